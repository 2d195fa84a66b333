"""Baselines for benchmarks/bench_worker.py: the same job done the textbook way elsewhere."""
