"""Known-answer vectors of the secure-aggregation derivations (tests/vectors/secagg_kat.json).

Run by hand only (`python -m tests.vectors.make_secagg_kat`), never from the suite:
`tests/test_secagg_vectors.py` recomputes every value and compares it with
the checked-in file. A change of any of these values means old and new nodes can no
longer run one protocol together: regenerating the file is then not enough, the
protocol string (`fedseg.common.secagg.derivation.PROTOCOL`) must be bumped as well so that
mixed versions fail loudly at the first derivation instead of producing a wrong sum.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from fedseg.common.secagg.derivation import (
    agree,
    encode_info,
    escrow_commitment,
    escrow_pad,
    pair_key,
    pair_secrets,
    public_key_of,
    tag_layout,
)
from fedseg.common.secagg.masks import pairwise_masks, self_masks
from fedseg.common.secagg.messages import MaskedInput
from fedseg.common.secagg.node import SecAggClient
from fedseg.common.secagg.node_state import ClientState
from fedseg.common.secagg.server import RoundResult, SecAggServer
from tests.secagg_driver import set_up_clients, trusts

KAT_PATH = Path(__file__).with_name("secagg_kat.json")

RUN_ID = "kat-run"
ROUND = 3
NODE_U, NODE_V = 7, 42
TAGS = {"sums": 6, "counts": 3}  # masked in sorted tag order: counts, then sums
SEED_B = bytes(range(32))  # b_{u,r}, the self-mask seed
ESCROW_S = bytes(range(32, 64))  # s_{u,r}, the escrow key
PRIVATE_U = hashlib.sha256(b"fedseg kat private key u").digest()
PRIVATE_V = hashlib.sha256(b"fedseg kat private key v").digest()

COHORT = (7, 42, 1000)
COHORT_THRESHOLD = 2
COHORT_FRAC_BITS = 16
COHORT_RUN_ID = "kat-cohort"
COHORT_INPUTS = {  # exact in 16 fractional bits, so the sums are exact too
    7: {"counts": [1.0, 0.0, 3.0], "sums": [1.5, -2.25, 0.0, 100.0, -0.5, 7.75]},
    42: {"counts": [0.0, 2.0, 1.0], "sums": [-1.0, 4.5, 3.25, -50.0, 0.125, 0.0]},
    1000: {"counts": [5.0, 1.0, 0.0], "sums": [0.0, 0.0, -8.0, 2.5, 1.0, -7.75]},
}
WORDS_SHOWN = 4


class KatRng:
    """Deterministic `rng(n) -> bytes`: the SHAKE-256 stream of a label, read in order
    (independent of numpy's generators, so the vectors survive a numpy upgrade)."""

    def __init__(self, label: bytes) -> None:
        self._label, self._used = label, 0

    def __call__(self, n: int) -> bytes:
        out = hashlib.shake_256(self._label).digest(self._used + n)[self._used :]
        self._used += n
        return out


def cohort_rng(node_id: int) -> KatRng:
    """The injected randomness of one cohort node."""
    return KatRng(b"fedseg kat rng node %d" % node_id)


def words_summary(words: np.ndarray) -> dict[str, Any]:
    """The first words of a uint64 vector and the SHA-256 of all of it (little-endian)."""
    data = np.asarray(words, dtype="<u8").tobytes()
    return {
        "first_words": [int(w) for w in np.asarray(words)[:WORDS_SHOWN]],
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def derivation_vectors() -> dict[str, Any]:
    """Every single derivation of one fixed pair and round."""
    z = agree(PRIVATE_U, public_key_of(PRIVATE_V))
    enc_key, root = pair_secrets(PRIVATE_U, public_key_of(PRIVATE_V), run_id=RUN_ID)
    k_uv = pair_key(root, run_id=RUN_ID, round=ROUND, tags=TAGS)
    pad = escrow_pad(ESCROW_S, run_id=RUN_ID, round=ROUND, sender=NODE_U, recipient=NODE_V)
    commitment = escrow_commitment(ESCROW_S, run_id=RUN_ID, round=ROUND, node_id=NODE_U)
    self_mask = self_masks(SEED_B, run_id=RUN_ID, round=ROUND, tags=TAGS)
    masks_u = pairwise_masks({NODE_V: k_uv}, NODE_U, tags=TAGS)
    masks_v = pairwise_masks({NODE_U: k_uv}, NODE_V, tags=TAGS)
    return {
        "public_key_u": public_key_of(PRIVATE_U).hex(),
        "public_key_v": public_key_of(PRIVATE_V).hex(),
        "shared_secret": z.hex(),
        "enc_key": enc_key.hex(),
        "mask_root": root.hex(),
        "pair_info": encode_info("pair", RUN_ID, ROUND, tag_layout(TAGS)[2]).hex(),
        "pair_key": k_uv.hex(),
        "escrow_pad": pad.hex(),
        "escrow_commitment": commitment.hex(),
        "self_mask": {tag: words_summary(m) for tag, m in sorted(self_mask.items())},
        "pairwise_masks_u": {tag: words_summary(m) for tag, m in sorted(masks_u.items())},
        "pairwise_masks_v": {tag: words_summary(m) for tag, m in sorted(masks_v.items())},
    }


def run_cohort() -> tuple[dict[int, ClientState], dict[int, MaskedInput], RoundResult]:
    """Set-up and round 1 of the fixed cohort: the client states right after masking
    (they hold b_{u,1} and the pair roots), the masked inputs, and the server's result."""
    server = SecAggServer(
        run_id=COHORT_RUN_ID, threshold=COHORT_THRESHOLD, frac_bits=COHORT_FRAC_BITS
    )
    clients = {u: SecAggClient(u, rng=cohort_rng(u), trust=t) for u, t in trusts(COHORT).items()}
    set_up_clients(server, clients)
    requests = server.round_requests({tag: len(v) for tag, v in COHORT_INPUTS[COHORT[0]].items()})
    masked = {u: clients[u].mask_input(req, COHORT_INPUTS[u]) for u, req in requests.items()}
    states = {u: client.state for u, client in clients.items()}
    for message in masked.values():
        server.receive_masked(message)
    unmask = server.unmask_request()
    for u in unmask.survivors:
        server.receive_unmask_shares(clients[u].unmask(unmask))
    return states, masked, server.finish_round()


def masked_input_summary(message: MaskedInput) -> dict[str, Any]:
    """A MaskedInput pinned by a hash of all its bytes and a few words per tag."""
    digest = hashlib.sha256()
    for tag, data in sorted(message.vectors.items()):
        digest.update(tag.encode() + data)
    for v, escrow in sorted(message.escrows.items()):
        digest.update(v.to_bytes(8, "big") + escrow)
    arrays = message.arrays()
    return {
        "sha256": digest.hexdigest(),
        "first_words": {tag: [int(w) for w in arrays[tag][:WORDS_SHOWN]] for tag in sorted(arrays)},
        "escrows": {str(v): e.hex() for v, e in sorted(message.escrows.items())},
    }


def cohort_vectors() -> dict[str, Any]:
    """The masked inputs of the fixed cohort and the sum the server decodes."""
    _, masked, result = run_cohort()
    return {
        "masked_inputs": {str(u): masked_input_summary(m) for u, m in sorted(masked.items())},
        "sums": {tag: s.tolist() for tag, s in sorted(result.sums.items())},
    }


def compute_vectors() -> dict[str, Any]:
    """The whole known-answer file, recomputed with the library."""
    return {
        "inputs": {
            "run_id": RUN_ID,
            "round": ROUND,
            "node_u": NODE_U,
            "node_v": NODE_V,
            "tags": TAGS,
            "seed_b": SEED_B.hex(),
            "escrow_s": ESCROW_S.hex(),
            "private_key_u": PRIVATE_U.hex(),
            "private_key_v": PRIVATE_V.hex(),
            "cohort": list(COHORT),
            "cohort_run_id": COHORT_RUN_ID,
            "cohort_threshold": COHORT_THRESHOLD,
            "cohort_frac_bits": COHORT_FRAC_BITS,
            "cohort_inputs": {str(u): x for u, x in COHORT_INPUTS.items()},
            "cohort_rng": "SHAKE-256 of b'fedseg kat rng node <id>', read in order",
        },
        "derivations": derivation_vectors(),
        "cohort": cohort_vectors(),
    }


def main() -> None:
    KAT_PATH.write_text(json.dumps(compute_vectors(), indent=1) + "\n")
    print(f"wrote {KAT_PATH}")


if __name__ == "__main__":
    main()
