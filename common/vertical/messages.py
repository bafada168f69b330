"""The two alignment exchanges after the PSI's first three (`common.psi`): the server
relays bytes it cannot open and learns one number, the count of shared customers.

`vertical_match` replaces the PSI's exchange 4: each party finds the customers every
peer holds and seals a fresh key contribution to each peer; `vertical_align` carries the
contributions, from which every party derives the same ordering key (the server never
sees it) and puts the shared customers in the same order."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fedseg.common.messages import Message
from fedseg.common.psi.messages import PsiMatchRequest, Sealed, Session, _BYTES
from fedseg.common.messages import SchemaRequest
from fedseg.common.secagg.messages import IdentityName




class VerticalWhoRequest(Message):
    """First exchange: which party is this node (its roster identity)?"""

    phase: Literal["vertical_who"] = "vertical_who"


class VerticalPartyReply(Message):
    phase: Literal["vertical_party"] = "vertical_party"
    party: IdentityName


class VerticalMatchRequest(PsiMatchRequest):
    """PSI exchange 4 of a vertical run: mark the customers every peer holds."""

    phase: Literal["vertical_match"] = "vertical_match"  # type: ignore[assignment]


class VerticalMatchReply(Message):
    """One sealed 32-byte key contribution per peer, and the coarse format of this
    party's ids (so ids written differently are caught before anything is computed)."""

    model_config = _BYTES
    phase: Literal["vertical_sealed"] = "vertical_sealed"
    sealed: Sealed
    id_format: str = Field(pattern=r"^(integer|text|digits-[0-9]{1,3})$")


class VerticalAlignRequest(SchemaRequest):
    """Every peer's sealed contribution: derive the ordering key, order the shared rows."""

    model_config = _BYTES
    phase: Literal["vertical_align"] = "vertical_align"
    session: Session
    sealed: Sealed


class VerticalAlignReply(Message):
    phase: Literal["vertical_aligned"] = "vertical_aligned"
    shared: int = Field(ge=0)  # customers every party holds


VERTICAL_REQUESTS = (VerticalWhoRequest, VerticalMatchRequest, VerticalAlignRequest)
VERTICAL_REPLIES = (VerticalPartyReply, VerticalMatchReply, VerticalAlignReply)
