"""Benchmarks (run by hand, never timed in tests) and their FLOP count."""
