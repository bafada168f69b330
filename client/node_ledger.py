"""The node's own privacy ledger: a small JSON file of what every run released about it.

The server keeps a ledger too, but that is the server's claim; this one is the node's
guarantee. Every release is booked (ρ, zCDP) before the node sends it, with its run id
and date, so repeated runs add up; a release that would pass the per-run or per-period
budget (ε converted with the policy's δ, `common/dp/accounting`) is refused. The file
is replaced atomically, so a crash leaves the old or the new ledger, never half of one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fedseg.client.guard import Refused
from fedseg.client.policy import NodePolicy
from fedseg.common.dp.accounting import compose_rho, rho_from_epsilon

_RTOL = 1e-9  # float slack when releases add up to exactly the budget


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    run: str = Field(min_length=1)
    date: dt.date
    rho: float = Field(gt=0)
    what: str = ""


class LedgerFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[Entry] = []


def read_ledger(path: Path) -> LedgerFile:
    """The ledger on disk (empty if there is none yet); unreadable means refuse, never reset."""
    if not path.exists():
        return LedgerFile()
    try:
        return LedgerFile.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise Refused("policy-refused", f"privacy ledger {path} unreadable: {exc}") from None


def _write(path: Path, ledger: LedgerFile) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        json.dump(ledger.model_dump(mode="json"), out, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _over(spent: float, rho: float, epsilon: float | None, delta: float) -> bool:
    return epsilon is not None and spent + rho > rho_from_epsilon(epsilon=epsilon, delta=delta) * (1 + _RTOL)


def charge(policy: NodePolicy, run: str, rho: float, what: str, today: dt.date | None = None) -> None:
    """Book `rho` for `run` in the node's ledger, or raise `Refused("budget-exhausted")`."""
    path = Path(policy.privacy_ledger)  # the policy requires it with a DP limit
    today = today or dt.date.today()
    ledger = read_ledger(path)
    in_run = compose_rho(rhos=(e.rho for e in ledger.entries if e.run == run))
    since = today - dt.timedelta(days=policy.period_days)
    in_period = compose_rho(rhos=(e.rho for e in ledger.entries if e.date > since))
    if _over(in_run, rho, policy.max_epsilon_run, policy.dp_delta):
        raise Refused("budget-exhausted", f"run {run}: {what} needs rho {rho:.6g}, {in_run:.6g} spent")
    if _over(in_period, rho, policy.max_epsilon_period, policy.dp_delta):
        raise Refused("budget-exhausted", f"period: {what} needs rho {rho:.6g}, {in_period:.6g} spent")
    ledger.entries.append(Entry(run=run, date=today, rho=rho, what=what))
    _write(path, ledger)
