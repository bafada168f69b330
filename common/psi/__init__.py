"""Private set intersection of customer ids between nodes (DH-PSI over Curve25519).

Reusable id alignment: `group` (hash to the curve, commutative blinding), `channel`
(signed per-run keys and pairwise sealing through a relaying server), `protocol` (a
node's steps), `owner` (one owner per shared customer). Pure: no Flower, no I/O.
"""
