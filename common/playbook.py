"""The marketing playbook: an editable TOML file mapping segment keys to actions.

Every table under `[segments]` is named by a segment key of `common.naming`
(Champions, Loyal, At risk, ...) and says what to do with segments of that kind:
goal, channels, content, offer, service level. An optional `[naming]` table sets which
columns play the recency / frequency / monetary roles (see `NamingConfig`).
The default playbook ships as `common/playbook.toml`.
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fedseg.common.naming import SEGMENT_KEYS, NamingConfig, SegmentName

DEFAULT_PLAYBOOK = "playbook.toml"


class PlaybookError(ValueError):
    """A playbook file that cannot be read or does not validate."""


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid")

    goal: str = Field(min_length=1)
    channels: list[str] = Field(min_length=1)
    content: str = Field(min_length=1)
    offer: str = Field(min_length=1)
    service_level: str = Field(min_length=1)


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    naming: NamingConfig = NamingConfig()
    segments: dict[str, Action]
    source: str = Field("<playbook>", exclude=True)

    def action_for(self, name: SegmentName) -> Action | None:
        """The action for a named segment, or None (no RFM key, or key not in the playbook)."""
        return self.segments.get(name.key) if name.key else None


def parse_playbook(text: str, source: str = "<playbook>") -> Playbook:
    """Parse playbook TOML; every error names the source and the offending key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlaybookError(f"{source}: not valid TOML: {exc}") from exc
    segments = raw.get("segments")
    if not isinstance(segments, dict) or not segments:
        raise PlaybookError(f"{source}: needs a [segments] table with at least one segment key "
                            f"(known keys: {', '.join(SEGMENT_KEYS)})")
    for key in segments:
        if key not in SEGMENT_KEYS:
            raise PlaybookError(
                f"{source}: unknown segment key {key!r} in [segments] "
                f"(known keys: {', '.join(SEGMENT_KEYS)})"
            )
    try:
        return Playbook.model_validate({**raw, "source": source})
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise PlaybookError(f"{source}: invalid playbook: {details}") from exc


def load_playbook(path: str | Path | None = None) -> Playbook:
    """Read a playbook file; without a path, the default one shipped with fedseg."""
    if path is None:
        resource = files("fedseg.common").joinpath(DEFAULT_PLAYBOOK)
        return parse_playbook(resource.read_text(encoding="utf-8"), f"<default {DEFAULT_PLAYBOOK}>")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlaybookError(f"{path}: cannot read playbook: {exc.strerror or exc}") from exc
    return parse_playbook(text, str(path))
