"""Secure aggregation: the server learns the sum of the nodes' vectors and nothing else.

Bonawitz et al.'s (CCS 2017) masking in its honest-but-curious form, one set-up per run
and many rounds, pair keys derived per round and escrowed for dropout recovery. The
protocol, its encoding, guarantees and threat model are written once, in PRIVACY.md,
section "Secure aggregation", which also lists what each module here does.
"""
