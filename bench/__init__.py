"""Benchmarks: `make bench` (python -m bench) prints figures, each against a baseline from the same run."""
