"""The masks: AES-256-CTR keystreams read as uint64 words, the self-mask of a node and
the signed sum of its pairwise masks, cut into the round's tagged vectors.

Each key (a pair key or a self-mask key from `derivation`) is used for one stream only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numpy.typing import NDArray

from fedseg.common.secagg.derivation import TagOrder, self_mask_keys, tag_layout
from fedseg.common.secagg.messages import bytes_to_u64

_CTR_FROM_ZERO = modes.CTR(bytes(16))  # every key is used for one stream only
_SHORT_STREAM_WORDS = 1024  # below this, per-key numpy calls cost more than the adds
_STREAM_BATCH = 128  # keystreams per joined matrix


def keystreams(keys: Sequence[bytes], n_bytes: int) -> list[bytes]:
    """`n_bytes` of AES-256-CTR keystream per key (each key is used for one stream only)."""
    zeros = bytes(n_bytes)
    return [Cipher(algorithms.AES(k), _CTR_FROM_ZERO).encryptor().update(zeros) for k in keys]


def prg(key: bytes, length: int) -> NDArray[np.uint64]:
    """`length` uint64 words of AES-256-CTR keystream (each key is used for one stream)."""
    return bytes_to_u64(keystreams([key], 8 * length)[0])


def split_tags(words: NDArray[np.uint64], order: TagOrder) -> dict[str, NDArray[np.uint64]]:
    """One round's words cut into its tags' vectors, in the layout's order."""
    out, start = {}, 0
    for tag, n in order:
        out[tag] = words[start : start + n]
        start += n
    return out


def self_masks(
    seed: bytes, *, run_id: str, round: int, tags: Mapping[str, int]
) -> dict[str, NDArray[np.uint64]]:
    """PRG(b_{u,r}) for every tag of a round: the self-mask a node adds (Bonawitz et al.
    2017), one keystream keyed by HKDF-Expand(b_{u,r}, run_id | r | layout), split by tag."""
    order, total, layout = tag_layout(tags)
    [key] = self_mask_keys([seed], run_id=run_id, round=round, layout=layout)
    return split_tags(prg(key, total), order)


def self_mask(seed: bytes, *, run_id: str, round: int, tag: str, length: int) -> NDArray[np.uint64]:
    """The self-mask of a round that masks the single vector `tag`."""
    return self_masks(seed, run_id=run_id, round=round, tags={tag: length})[tag]


def pairwise_masks(
    pair_keys: Mapping[int, bytes], node_id: int, *, tags: Mapping[str, int]
) -> dict[str, NDArray[np.uint64]]:
    """Sum over peers v of +PRG(k_uv) for v > u and -PRG(k_uv) for v < u, per tag.

    Parameters
    ----------
    pair_keys : mapping peer id -> k_{uv,r} (32 bytes), see `pair_key`
    node_id : u
    tags : mapping tag -> vector length; one keystream per peer covers every tag in
        the canonical order of `tag_layout`.

    Returns
    -------
    dict tag -> ndarray of shape (length,), dtype uint64
    """
    order, total, _ = tag_layout(tags)
    plus = [key for v, key in pair_keys.items() if v > node_id]
    minus = [key for v, key in pair_keys.items() if v <= node_id]
    return split_tags(signed_stream_sum(plus, minus, total), order)


def signed_stream_sum(
    plus: Sequence[bytes], minus: Sequence[bytes], length: int
) -> NDArray[np.uint64]:
    """sum PRG(k) over `plus` minus sum PRG(k) over `minus`, modulo 2^64 (uint64 sums
    wrap, as the ring requires).

    Short streams (a Lloyd round's few hundred words) are joined into one (keys,
    length) matrix and reduced by one numpy call instead of one add per key; long ones
    are added one by one, which touches memory less."""
    result = np.zeros(length, dtype=np.uint64)
    for keys, combine in ((plus, np.add), (minus, np.subtract)):
        if length <= _SHORT_STREAM_WORDS:
            for start in range(0, len(keys), _STREAM_BATCH):
                chunk = keys[start : start + _STREAM_BATCH]
                data = b"".join(keystreams(chunk, 8 * length))
                words = np.frombuffer(data, dtype="<u8").reshape(len(chunk), length)
                combine(result, words.sum(axis=0, dtype=np.uint64), out=result)
        else:
            for k in keys:
                combine(result, np.frombuffer(keystreams([k], 8 * length)[0], dtype="<u8"), out=result)
    return result
