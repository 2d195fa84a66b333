"""Peers for benchmarks/bench_worker.py: the engines users would pick instead of ours.

Each peer (bytewax_tumbling, pathway_tumbling, flink_tumbling) runs as its users would run
it, in its own venv under .venv-peers/ (their pins clash with the project's and with each
other's), reads the benchmark's topics and writes its 1-minute windows per meter to a Kafka
topic; harness.py runs them and truth.py checks their windows against a brute force.
"""
