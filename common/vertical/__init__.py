"""Vertical federation: parties hold different columns of the same customers.

`spec` (which party holds which columns), `align` (a party's step after the PSI: the
shared customers in one order every party computes alone), `blocks` (the Lloyd
arithmetic on one party's block of features), `messages` and the vertical phases.
Pure: no Flower, no I/O.
"""
