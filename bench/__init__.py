"""Benchmarks that print figures (never pass/fail timings): `python -m bench [pure|operator|all]`.

See docs/benchmarks.md for what each one measures and the figures on the reference machine.
"""
