"""Node-side differential privacy: what a release costs, and how much noise to add.

The request states the TOTAL noise σ per released field (or per entry); the node
recomputes each field's L2 sensitivity Δ itself from the phase's `dp_release` and the
pinned form of the schema, so the ρ = Δ²/(2σ²) it books (Bun & Steinke 2016, Prop. 1.6)
never rests on the server's word. Its own share has std σ/sqrt(t − c): with t the
round's Shamir threshold and c the colluders its policy tolerates, the t − c honest
shares alone still sum to variance σ².
"""

from __future__ import annotations

import numpy as np

from fedseg.client.guard import Refused
from fedseg.client.policy import NodePolicy
from fedseg.common.dp.accounting import compose_rho, gaussian_rho
from fedseg.common.dp.noise import noise_share_count, noise_share_std
from fedseg.common.phases.registry import phase_for
from fedseg.common.schema_pin import canonical_schema
from fedseg.common.wire import SecureRoundRequest

NoisePlan = dict[str, float | list[float]]


def _effective_sigma(tag: str, sigma: np.ndarray, length: int, weights: np.ndarray | None) -> float:
    """The σ the field's Δ is measured against: the smallest σ_i / w_i over its entries."""
    if sigma.ndim > 1 or (sigma.ndim == 1 and sigma.size != length):
        raise Refused("bad-request", f"noise of {tag!r}: shape {sigma.shape} for {length} entries")
    if not (np.all(np.isfinite(sigma)) and np.all(sigma > 0)):
        raise Refused("policy-refused", f"noise of {tag!r}: not a finite std > 0")
    scaled = sigma / np.asarray(weights, dtype=float) if weights is not None else sigma
    return float(np.min(scaled))


def release_rho(req: SecureRoundRequest) -> float:
    """ρ this round releases about the node; refuses a released field without noise, a
    field DP does not cover, or sums of scaled records that are not clipped."""
    inner = req.inner
    if getattr(inner, "clip_norm", 1.0) <= 0:
        raise Refused("policy-refused", f"{inner.phase}: records not clipped (clip_norm <= 0)")
    release = phase_for(inner).dp_release(inner, canonical_schema(inner.schema_))
    rhos = []
    for tag, length in req.round.vectors.items():
        if tag not in release.deltas or tag not in req.noise:
            raise Refused("policy-refused", f"{inner.phase}.{tag} released without noise")
        sigma = _effective_sigma(tag, np.asarray(req.noise[tag], dtype=float), length, release.weights.get(tag))
        rhos.append(gaussian_rho(sensitivity=release.deltas[tag], sigma=sigma))
    return compose_rho(rhos=rhos)


def share_stds(noise: NoisePlan, *, threshold: int, policy: NodePolicy) -> NoisePlan:
    """This node's share of the total σ per field: σ/sqrt(t − c)."""
    if not noise:
        return {}
    try:
        shares = noise_share_count(min_survivors=threshold, max_colluders=policy.max_colluders)
    except ValueError as exc:
        raise Refused("policy-refused", f"noise shares: {exc}") from None
    factor = noise_share_std(sigma=1.0, n_clients=shares)  # 1/sqrt(t − c)
    return {tag: (np.asarray(s, dtype=float) * factor).tolist() if isinstance(s, list) else float(s) * factor
            for tag, s in noise.items()}
