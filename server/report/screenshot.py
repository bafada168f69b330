"""A PNG of the HTML report, rendered by headless Chromium in a subprocess.

Chromium runs with a throw-away profile and no network services; the page height is
measured first (a probe copy reports it in its title) so the screenshot holds the whole page.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class ChromiumError(RuntimeError):
    """Headless Chromium is missing or failed."""


def find_chromium() -> str:
    """Path of a Chromium/Chrome binary: $FEDSEG_CHROMIUM, else the first on PATH."""
    env = os.environ.get("FEDSEG_CHROMIUM")
    if env:
        return env
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise ChromiumError("no Chromium found (looked for " + ", ".join(CHROMIUM_NAMES)
                        + "); install it, e.g. `apt-get install -y chromium`, or set FEDSEG_CHROMIUM")


def chromium_args(profile_dir: str, width: int, height: int) -> list[str]:
    """Flags for a quiet headless render: no sandbox (containers), no network services, own profile."""
    return [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        "--disable-dev-shm-usage", f"--user-data-dir={profile_dir}", f"--window-size={width},{height}",
    ]


def run_chromium(url_or_path: str | Path, extra: list[str], width: int = 1280, height: int = 2000,
                 timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run headless Chromium on a local file with a throw-away profile; returns the process."""
    binary = find_chromium()
    target = Path(url_or_path).resolve().as_uri() if not str(url_or_path).startswith("file:") else str(url_or_path)
    with tempfile.TemporaryDirectory(prefix="fedseg-chromium-") as profile:
        cmd = [binary, *chromium_args(profile, width, height), *extra, target]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ChromiumError(f"chromium did not finish within {timeout:.0f}s") from exc
    return proc


def page_height(html_path: str | Path, width: int = 1280) -> int:
    """Full height of the rendered page in CSS pixels (a probe copy reports it in its title)."""
    src = Path(html_path).read_text(encoding="utf-8")
    probe = src.replace("</body>", "<script>document.title='H='+Math.ceil(document.documentElement"
                                   ".scrollHeight)</script></body>", 1)
    with tempfile.TemporaryDirectory(prefix="fedseg-probe-") as tmp:
        p = Path(tmp) / "probe.html"
        p.write_text(probe, encoding="utf-8")
        proc = run_chromium(p, ["--dump-dom"], width=width, height=1000)
    found = re.search(r"<title>H=(\d+)</title>", proc.stdout)
    if not found:
        raise ChromiumError(f"could not measure the page height: {proc.stderr.strip()[-300:]}")
    return int(found.group(1))


def screenshot(html_path: str | Path, png_path: str | Path, width: int = 1280, height: int | None = None) -> Path:
    """PNG of the report rendered by headless Chromium; height defaults to the whole page."""
    png_path = Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    height = height or min(page_height(html_path, width) + 10, 16000)
    png_path.unlink(missing_ok=True)
    proc = run_chromium(html_path, [f"--screenshot={png_path}"], width=width, height=height)
    if not png_path.is_file():
        raise ChromiumError(f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
    return png_path
