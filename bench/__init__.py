"""Benchmark scripts: run each as `python bench/<name>.py`; they print their figures and write bench/results/."""
