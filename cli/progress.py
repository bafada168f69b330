"""Live progress of a run in the terminal (rich): one line per phase and per Lloyd round.

Plain lines rather than a redrawn bar, so progress also reads well in CI logs and when
piped to a file.
"""

from __future__ import annotations

import time

from rich.console import Console

from fedseg.server.run_types import Event


class ProgressView:
    """Context manager whose `on_event` the orchestrator calls after every exchange."""

    def __init__(self, console: Console, max_rounds: int) -> None:
        self.console = console
        self.max_rounds = max_rounds
        self.start = time.perf_counter()

    def __enter__(self) -> ProgressView:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def on_event(self, event: Event) -> None:
        elapsed = f"[dim]{time.perf_counter() - self.start:6.1f}s[/dim]"
        if event.phase == "lloyd":
            d = event.detail
            if d.get("noisy"):
                line = (f"round {event.round:>2}/{self.max_rounds}: differentially private, all rounds run; "
                        f"centroids moved {d['moved']:.3f} (scaled units, noisy)")
                self.console.print(f"{elapsed} [green]{'lloyd':>11}[/green] {line}", highlight=False)
                return
            best = min(d["inertia"].items(), key=lambda kv: kv[0])
            line = (
                f"round {event.round:>2}/{self.max_rounds}: {d['converged']}/{d['candidates']} "
                f"candidates converged; inertia k={best[0]} {best[1]:,.0f}"
            )
            self.console.print(f"{elapsed} [green]{'lloyd':>11}[/green] {line}", highlight=False)
            return
        style = {"node-failed": "yellow", "failed": "red"}.get(event.phase, "cyan")
        self.console.print(f"{elapsed} [{style}]{event.phase:>11}[/{style}] {event.message}", highlight=False)
