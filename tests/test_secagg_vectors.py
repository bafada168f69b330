"""Known-answer vectors of secure aggregation: a change that makes old and new nodes
disagree on a pair key, pad, commitment, mask or masked vector fails here.

Every value of tests/vectors/secagg_kat.json is recomputed with the library and compared
byte-exact; the derivations are also rebuilt independently of the library, from the
encoding PRIVACY.md specifies, with `cryptography`'s HKDF and AES-CTR.
"""

import json

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from numpy.testing import assert_array_equal

from tests.vectors import make_secagg_kat as kat

PROTOCOL = b"fedseg-secagg/2"


@pytest.fixture(scope="module")
def stored():
    return json.loads(kat.KAT_PATH.read_text())


@pytest.fixture(scope="module")
def recomputed():
    return kat.compute_vectors()


@pytest.mark.parametrize("section", ["inputs", "derivations", "cohort"])
def test_library_reproduces_the_stored_vectors(stored, recomputed, section):
    # json round trip: dict keys become strings exactly as in the stored file
    assert json.loads(json.dumps(recomputed[section])) == stored[section]


# ------------------------------------------------ independent reference (PRIVACY.md)


def field(part):
    """One info field: 4-byte big-endian length, then ints as 8 big-endian bytes,
    str as UTF-8, bytes as they are."""
    if isinstance(part, int):
        raw = part.to_bytes(8, "big")
    elif isinstance(part, str):
        raw = part.encode()
    else:
        raw = part
    return len(raw).to_bytes(4, "big") + raw


def info(*parts):
    return PROTOCOL + b"".join(field(p) for p in parts)


def layout(tags):
    return info(*[f"{tag}={n}" for tag, n in sorted(tags.items())])


def hkdf(secret, info_bytes):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info_bytes).derive(secret)


def expand(key, info_bytes):
    return HKDFExpand(algorithm=hashes.SHA256(), length=32, info=info_bytes).derive(key)


def keystream_words(key, length):
    enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    return np.frombuffer(enc.update(bytes(8 * length)), dtype="<u8").astype(np.uint64)


def split_sorted(words, tags):
    out, start = {}, 0
    for tag, n in sorted(tags.items()):
        out[tag] = words[start : start + n]
        start += n
    return out


def public(private_key):
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()


def test_pair_derivations_match_an_independent_hkdf(stored):
    d = stored["derivations"]
    z = X25519PrivateKey.from_private_bytes(kat.PRIVATE_U).exchange(
        X25519PrivateKey.from_private_bytes(kat.PRIVATE_V).public_key()
    )
    root = hkdf(z, info("mask-root", kat.RUN_ID))
    pair_info = info("pair", kat.RUN_ID, kat.ROUND, layout(kat.TAGS))

    assert public(kat.PRIVATE_U).hex() == d["public_key_u"]
    assert public(kat.PRIVATE_V).hex() == d["public_key_v"]
    assert z.hex() == d["shared_secret"]
    assert hkdf(z, info("enc", kat.RUN_ID)).hex() == d["enc_key"]
    assert root.hex() == d["mask_root"]
    assert pair_info.hex() == d["pair_info"]
    assert expand(root, pair_info).hex() == d["pair_key"]


def test_escrow_pad_and_commitment_match_an_independent_hkdf(stored):
    d, s = stored["derivations"], kat.ESCROW_S
    pad_info = info("pad", kat.RUN_ID, kat.ROUND, kat.NODE_U, kat.NODE_V)

    assert expand(s, pad_info).hex() == d["escrow_pad"]
    assert expand(s, info("commit", kat.RUN_ID, kat.ROUND, kat.NODE_U)).hex() == d["escrow_commitment"]


def test_masks_match_an_independent_keystream(stored):
    d, total = stored["derivations"], sum(kat.TAGS.values())
    self_key = expand(kat.SEED_B, info("self", kat.RUN_ID, kat.ROUND, layout(kat.TAGS)))
    self_mask = split_sorted(keystream_words(self_key, total), kat.TAGS)
    pair = keystream_words(bytes.fromhex(d["pair_key"]), total)
    plus = split_sorted(pair, kat.TAGS)  # u = 7 < v = 42: u adds the stream, v subtracts it
    minus = split_sorted(np.uint64(0) - pair, kat.TAGS)

    for tag in kat.TAGS:
        assert kat.words_summary(self_mask[tag]) == d["self_mask"][tag]
        assert kat.words_summary(plus[tag]) == d["pairwise_masks_u"][tag]
        assert kat.words_summary(minus[tag]) == d["pairwise_masks_v"][tag]


def test_masked_inputs_match_an_independent_masking(stored):
    # y_u = round(x_u 2^f) + PRG(b_u) + sum_{v > u} PRG(k_uv) - sum_{v < u} PRG(k_uv) mod 2^64,
    # rebuilt from each client's own seed and pair roots
    states, masked, _ = kat.run_cohort()
    tags = {tag: len(x) for tag, x in kat.COHORT_INPUTS[kat.COHORT[0]].items()}
    total, shape = sum(tags.values()), layout(tags)
    for u, state in states.items():
        x = np.concatenate([kat.COHORT_INPUTS[u][tag] for tag in sorted(tags)])
        y = np.rint(x * 2.0**kat.COHORT_FRAC_BITS).astype(np.int64).astype(np.uint64)
        y += keystream_words(expand(state.seed, info("self", kat.COHORT_RUN_ID, 1, shape)), total)
        for v in kat.COHORT:
            if v != u:
                k = expand(state.mask_roots[v], info("pair", kat.COHORT_RUN_ID, 1, shape))
                y = y + keystream_words(k, total) if v > u else y - keystream_words(k, total)
        for tag, words in split_sorted(y, tags).items():
            assert_array_equal(masked[u].arrays()[tag], words)
        assert kat.masked_input_summary(masked[u]) == stored["cohort"]["masked_inputs"][str(u)]


def test_cohort_sum_is_the_plain_sum(stored):
    for tag, total in stored["cohort"]["sums"].items():
        expected = np.sum([kat.COHORT_INPUTS[u][tag] for u in kat.COHORT], axis=0)
        assert_array_equal(total, expected)
