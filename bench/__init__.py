"""Benchmark scripts: each prints numbers and ratios (run ``python bench/<name>.py``)."""
