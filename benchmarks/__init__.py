"""Measurements of compat (run as scripts: python benchmarks/NAME.py)."""
