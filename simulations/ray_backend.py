"""Where the Simulation Engine runs: a Ray instance of its own, or an existing cluster.

Why: hundreds of simulated nodes outgrow one machine; `fedseg simulate --ray-address
ray://head:10001` (or `auto`, or the `RAY_ADDRESS` environment variable Ray itself
reads) runs the nodes on a cluster started with `ray start --head`. Every machine of
that cluster needs this fedseg version installed. Deployment across machines stays
Flower's SuperLink and SuperNodes (DEPLOY.md).
"""

from __future__ import annotations

import os


def ray_address(flag: str | None = None) -> str | None:
    """The cluster to join: the flag, else `RAY_ADDRESS`, else None (a local Ray)."""
    return (flag or os.environ.get("RAY_ADDRESS") or "").strip() or None


def backend_config(num_cpus: int | None = None, address: str | None = None) -> dict:
    """Flower's backend config; joining a cluster, Ray forbids `num_cpus` (the cluster
    already declares its resources)."""
    init_args: dict = {"include_dashboard": False}
    if address:
        init_args["address"] = address
    else:
        init_args["num_cpus"] = num_cpus or os.cpu_count() or 1
    return {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}, "init_args": init_args}
