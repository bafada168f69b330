"""Benchmarks against scikit-learn and plaintext runs; run from the repository root, never installed."""
