"""The one list of protocol phases: who answers a request, found by its `phase` name.

A request names its phase in its `phase` literal, so the lookup never depends on
class hierarchy (`BucketSumsRequest` extends `BucketCountsRequest` and still finds its
own phase). The wire builds its message unions from this list.
"""

from __future__ import annotations

from fedseg.common.messages import Message
from fedseg.common.phases.base import Phase

_PHASES: dict[str, Phase] = {}


def register(phase: Phase) -> Phase:
    """Add a phase; its name must match its request's and reply's `phase` literal."""
    for model in (phase.request, phase.reply):
        if model.model_fields["phase"].default != phase.name:
            raise ValueError(f"{model.__name__}.phase must default to {phase.name!r}")
    known = _PHASES.get(phase.name)
    if known is not None and known is not phase:
        raise ValueError(f"phase {phase.name!r} is already registered")
    _PHASES[phase.name] = phase
    return phase


def unregister(name: str) -> None:
    """Forget a phase (a test's toy phase)."""
    _PHASES.pop(name, None)


def phase_for(request: Message) -> Phase:
    """The phase that answers `request`; KeyError for a request of no phase."""
    return _PHASES[request.phase]  # type: ignore[attr-defined]


def all_phases() -> tuple[Phase, ...]:
    """Every registered phase, in registration order."""
    return tuple(_PHASES.values())
