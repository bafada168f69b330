"""Plain-word warnings a marketer should read before acting on a segmentation: weak
separation, a k at the edge of the range tried, segments merged by disclosure control,
noisy figures under differential privacy. The terminal, Markdown and HTML reports all
print the same list."""

from __future__ import annotations

from fedseg.common.artifact import ModelArtifact

WEAK_SILHOUETTE = 0.25  # below: the segments overlap more than they separate


def caveats(model: ModelArtifact) -> list[str]:
    """The warnings that apply to this model, each one sentence or two (empty: none)."""
    out: list[str] = []
    sil = model.metrics.get("silhouette")
    if sil is not None and sil < WEAK_SILHOUETTE:
        out.append(f"The segments overlap a lot (silhouette {sil:.2f}, below {WEAK_SILHOUETTE}): read them as "
                   "tendencies in one continuous customer base, not as clearly separate groups.")
    out += _edge_of_range(model)
    merged = (model.privacy.get("disclosure_control") or {}).get("merged_segments", 0)
    if merged:
        size = model.privacy.get("min_release_size")
        out.append(f"{merged} segment(s) had fewer than {size} customers and were merged into their nearest "
                   "segment, so that no published figure describes a handful of people.")
    budget = (model.privacy.get("guarantee") or {}) if model.privacy.get("mode") == "dp+secure" else {}
    if budget:
        out.append(f"Differentially private run (ε = {budget.get('epsilon')}, δ = {budget.get('delta')}): every "
                   "size, share and mean is noisy; '±' gives its 95 % interval from the noise alone.")
    return out


def _edge_of_range(model: ModelArtifact) -> list[str]:
    """A k chosen at the smallest or largest value tried may mean the best k lies outside."""
    cfg = model.run.config
    ks = sorted(int(r["k"]) for r in model.selection)
    if cfg.get("k") or len(ks) < 2:
        return []
    chosen = model.k + int((model.privacy.get("disclosure_control") or {}).get("merged_segments", 0))
    if chosen == ks[-1]:
        return [f"k = {chosen} is the largest number of segments tried ({ks[0]}..{ks[-1]}): more segments may "
                "fit better; try a wider --k-range."]
    if chosen == ks[0]:
        return [f"k = {chosen} is the smallest number of segments tried ({ks[0]}..{ks[-1]}): the data may not "
                "split into clear segments; check the silhouette or try a different range."]
    return []
