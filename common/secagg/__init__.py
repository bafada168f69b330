"""Secure aggregation: the server learns the sum of the nodes' vectors and nothing else.

Bonawitz et al.'s (CCS 2017) masking, one set-up per run and many rounds, pair keys
derived per round and escrowed for dropout recovery; against a deviating server, keys
signed under roster identities, node-enforced thresholds, signed survivor lists when
nodes dropped, and a cohort that only shrinks under DP (`identity`, `node_checks`). The
protocol, its encoding, guarantees and threat model are written once, in PRIVACY.md,
section "Secure aggregation", which also lists what each module here does.
"""
