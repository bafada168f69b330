"""Problems found in a customer table, and how they read to the person who owns it.

Every problem names its column, its kind and the rows (counted from 1 below the header,
in the file the user gave). A table's problems are all collected first and reported
together, grouped by column and kind, so one pass over `fedseg check` shows every fix
needed, not the first one. The text stays on the node (its log, the user's terminal);
the server only ever sees a failure code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SHOW_ROWS = 20  # rows listed per problem before "+N more"
SHOW_PROBLEMS = 20  # problems listed before "and N more problems"


class DataError(ValueError):
    """A table that does not match the schema; the message names file, column, rows."""


@dataclass(frozen=True)
class Problem:
    """One kind of fault in one column (or in the table when `column` is None).

    rows: 0-based positions of the offending rows in the user's table (may be empty)."""

    column: str | None
    kind: str
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    hint: str = ""

    def text(self, show_rows: int = SHOW_ROWS) -> str:
        where = f"column {self.column!r}: " if self.column is not None else ""
        at = f" at {rows_text(self.rows, show_rows)}" if len(self.rows) else ""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{where}{self.kind}{at}{hint}"


def rows_text(rows: np.ndarray, show: int = SHOW_ROWS) -> str:
    """`row 3` or `rows 1, 2, 5 (+15 more)`: 1-based data rows (row 1 is below the header)."""
    rows = np.asarray(rows, dtype=np.int64)
    shown = rows[:show] + 1
    more = len(rows) - len(shown)
    text = ", ".join(str(i) for i in shown)
    return f"row{'s' if len(shown) > 1 else ''} {text}" + (f" (+{more} more)" if more > 0 else "")


def problem_at(column: str | None, kind: str, mask: np.ndarray, hint: str = "") -> Problem | None:
    """A Problem at the rows where `mask` holds, or None when it holds nowhere."""
    rows = np.flatnonzero(mask)
    return Problem(column, kind, rows, hint) if len(rows) else None


def report(source: str, problems: list[Problem], show_rows: int = SHOW_ROWS,
           show_problems: int = SHOW_PROBLEMS) -> str:
    """All problems of one table as text: the file, then one line per problem (the first
    `show_problems`, then a count of the rest)."""
    if len(problems) == 1:
        return f"{source}: {problems[0].text(show_rows)}"
    lines = [f"{source}: {len(problems)} problems"]
    lines += [f"  - {p.text(show_rows)}" for p in problems[:show_problems]]
    if len(problems) > show_problems:
        lines.append(f"  ... and {len(problems) - show_problems} more problems")
    return "\n".join(lines)


def raise_if_any(source: str, problems: list[Problem | None], show_rows: int = SHOW_ROWS) -> None:
    """Raise one DataError listing every problem found (None entries are no problem)."""
    found = [p for p in problems if p is not None]
    if found:
        raise DataError(report(source, found, show_rows))
