"""Live progress of a run in the terminal (rich): phase lines and a Lloyd-round bar."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from server.orchestrator import Event


class ProgressView:
    """Context manager whose `on_event` the orchestrator calls after every exchange."""

    def __init__(self, console: Console, max_rounds: int) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console,
        )
        self.task = self.progress.add_task("Lloyd rounds", total=max_rounds, info="", start=False)

    def __enter__(self) -> ProgressView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def on_event(self, event: Event) -> None:
        if event.phase == "lloyd":
            self.progress.start_task(self.task)
            best = ", ".join(f"k={k}: {v:,.0f}" for k, v in sorted(event.detail["inertia"].items()))
            info = f"{event.detail['converged']}/{event.detail['candidates']} converged | inertia {best}"
            self.progress.update(self.task, completed=event.round, info=info[:110])
            return
        style = "yellow" if event.phase == "node-failed" else "cyan"
        self.progress.console.print(f"[{style}]{event.phase:>11}[/{style}] {event.message}", highlight=False)
