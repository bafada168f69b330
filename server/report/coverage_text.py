"""The report's account of the data: values imputed, clipped and rows dropped per feature.

Reads the artifact's `coverage` section (aggregates over all nodes, disclosure control
already applied: a count below the floor shows as "< N"). Under DP the counts were not
released and the report says so.
"""

from __future__ import annotations


def _n(value: int | None, floor: int) -> str:
    return f"< {floor}" if value is None else f"{value:,}"


def coverage_summary(coverage: dict) -> str:
    """One line for the terminal."""
    if not coverage.get("released"):
        return f"data coverage: {coverage.get('reason', 'not released')}"
    floor = coverage["suppressed_below"]
    feats = coverage["features"].values()
    imputed = sum(f["imputed"] or 0 for f in feats)
    clipped = sum(f.get("clipped") or 0 for f in feats)
    return (f"data: {_n(coverage['rows'], floor)} rows read, {_n(coverage['rows_dropped'], floor)} dropped by the "
            f"schema's policies; {imputed:,} values imputed, {clipped:,} clipped to public bounds "
            "(counts below the disclosure floor not included)")


COLUMNS = ("feature", "missing", "imputed (value)", "clipped", "rows dropped")


def coverage_lead(coverage: dict) -> str:
    """Rows read, taking part and dropped, or why nothing was released."""
    if not coverage.get("released"):
        return f"Not released: {coverage.get('reason', '')}."
    floor = coverage["suppressed_below"]
    return (f"{_n(coverage['rows'], floor)} rows read, {_n(coverage['kept'], floor)} took part "
            f"({_n(coverage['rows_dropped'], floor)} dropped by the schema's policies).")


def coverage_rows(coverage: dict) -> list[list[str]]:
    """One row of `COLUMNS` per feature (empty when nothing was released)."""
    if not coverage.get("released"):
        return []
    floor, rows = coverage["suppressed_below"], []
    for name, f in coverage["features"].items():
        value = f.get("impute_value")
        imputed = _n(f["imputed"], floor) + (f" ({value:,.4g})" if value is not None and f["imputed"] else "")
        clipped = _n(f["clipped"], floor) if "clipped" in f else "-"
        rows.append([name, _n(f["missing"], floor), imputed, clipped, _n(f["dropped"], floor)])
    return rows


def coverage_markdown(coverage: dict) -> list[str]:
    """The "Data coverage" section: one table row per feature."""
    lines = ["", "## Data coverage", "", coverage_lead(coverage)]
    rows = coverage_rows(coverage)
    if rows:
        lines += ["", f"| {' | '.join(COLUMNS)} |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {' | '.join(r)} |" for r in rows]
    return lines
