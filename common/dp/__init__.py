"""Differential privacy for fedseg, split by job.

`accounting` (pure zCDP arithmetic), `sensitivity` (L2 sensitivities and the public
bounds of records), `noise` (Gaussian noise shares and clipping), `ledger` (the budget
plan and the history of releases). Every guarantee is for **add/remove one customer**;
PRIVACY.md ("Differential privacy") has the protocol text.
"""
