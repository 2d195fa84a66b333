# The README's two commands: `make demo` and `make test`. Both set themselves up and are safe to re-run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat setup.cfg constraints.txt pyproject.toml | cksum | cut -d' ' -f1)
# the chaos cells (tests/test_chaos.py, 2-3 min) run in `make chaos` and with
# `pytest -m chaos`, so make test stays near 15 minutes. Two pytest processes, a test
# file each at a time: most tests wait on Kafka groups and workers, so the suite takes
# ~11 min of pytest instead of ~18 (every test uses its own topics, namespace and ports)
PYTEST_ARGS ?= -m "not chaos" -n 2 --dist loadfile

.PHONY: setup demo test lint stack-up stack-down bench clean chaos bench-costs bench-insights bench-peers wheel-check

setup: $(STAMP)

$(STAMP):
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found; install Python 3.11+"; exit 2; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "make: Python 3.11+ is needed"; exit 2; }
	@echo "setup: creating $(VENV) and installing pinned dependencies (constraints.txt)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

demo: setup
	$(BIN)/auth-kappa demo $(DEMO_ARGS)

# Starts the real stack, runs the whole suite, stops the stack (KEEP_STACK=1 leaves it up).
test: setup
	$(BIN)/auth-kappa stack up
	@status=0; $(BIN)/ruff check . || status=$$?; \
	$(BIN)/python -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ -z "$(KEEP_STACK)" ]; then $(BIN)/auth-kappa stack down; fi; \
	exit $$status

# The whole chaos matrix (issue 9) with repeats: private Kafka + Redis per run (the shared
# stack is up for the S3-outage and rebuild cells and the Kafka jars); writes docs/reliability.md.
CHAOS_ARGS ?= --repeats 2 --budget 27
chaos: setup
	$(BIN)/auth-kappa stack up
	$(BIN)/python -m tests.chaos.run $(CHAOS_ARGS)

# Builds the sdist and wheel, installs the wheel into a fresh venv in a temp folder
# (dependencies from the registry, pinned by constraints.txt; pip reuses its cache) and runs
# `auth-kappa --help`, the embedded engine and the dashboard's files there (tests/wheel_smoke.py).
wheel-check: setup
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "wheel-check: building into $$tmp/dist"; \
	$(BIN)/python -m build --outdir "$$tmp/dist" . >"$$tmp/build.log" 2>&1 || \
		{ tail -30 "$$tmp/build.log"; exit 1; }; \
	echo "wheel-check: installing $$(cd "$$tmp/dist" && ls *.whl) into a fresh venv"; \
	$(PYTHON) -m venv "$$tmp/venv" && \
	"$$tmp/venv/bin/python" -m pip install -q -c constraints.txt "$$tmp"/dist/*.whl && \
	cd "$$tmp" && "$$tmp/venv/bin/auth-kappa" --help >/dev/null && \
	echo "wheel-check: auth-kappa --help ok" && \
	"$$tmp/venv/bin/python" "$(CURDIR)/tests/wheel_smoke.py"

lint: setup
	$(BIN)/ruff check .

stack-up: setup
	$(BIN)/auth-kappa stack up

stack-down: setup
	$(BIN)/auth-kappa stack down

bench: setup
	$(BIN)/auth-kappa stack up
	$(BIN)/python benchmarks/bench_simulator_kafka.py

# unit costs per reading (CPU, bytes) for `auth-kappa plan`, on 1 and 3 Redis primaries;
# ~12-16 min (--redis 1: ~6), not part of `make test`
bench-costs: setup
	$(BIN)/auth-kappa stack up
	$(BIN)/python benchmarks/bench_unit_costs.py

# measured quality of the insights (issue 12): precision, recall, delay, false alerts on a
# realistic fleet, and the live cost of insights on vs off; ~6 min, not part of `make test`
bench-insights: setup
	$(BIN)/auth-kappa stack up
	$(BIN)/python benchmarks/bench_insights.py

# bench_worker with all five peers (Faust, Quix, Bytewax, Pathway, PyFlink): installs the
# peers-* extras of setup.cfg into .venv-peers/<name> (pinned by benchmarks/peers/pins/),
# never into .venv; ~25 min, not part of `make test`
bench-peers: setup
	$(BIN)/auth-kappa stack up
	$(BIN)/python benchmarks/bench_worker.py $(BENCH_PEERS_ARGS)

clean:
	rm -rf out test-artifacts .pytest_cache .ruff_cache
