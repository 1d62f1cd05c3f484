# mmbot: two commands for users (make run, make test), more for developers.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
# Pinned installs (requirements/*.lock, refreshed by `make lock`): the daemon image uses
# runtime.lock, the research image research.lock, make test and CI dev.lock.
LOCK_RUN := requirements/runtime.lock
LOCK_DEV := requirements/dev.lock
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --no-strip-markers pyproject.toml

.PHONY: run test test-deps lock k8s-rules lint typecheck contracts pytest test-containers test-calibration fuzz golden bench bench-quick clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml $(LOCK_RUN) | $(PY)
	$(PIP) install --quiet -c $(LOCK_RUN) -e .
	touch $@

# dev includes the research and backtrader extras: the tests cover reports, optimize and Dask.
$(STAMP_DEV): pyproject.toml $(LOCK_DEV) | $(PY)
	$(PIP) install --quiet -c $(LOCK_DEV) -e '.[dev,research,backtrader]'
	touch $@ $(STAMP_RUN)

## make lock: re-resolve every lock to the newest versions pyproject.toml allows (dev.lock
## first; runtime.lock and research.lock are constrained by it, so all three agree)
lock: $(STAMP_DEV)
	$(UV_COMPILE) --upgrade --extra research --extra backtrader --extra dev -o $(LOCK_DEV)
	$(UV_COMPILE) -c $(LOCK_DEV) -o $(LOCK_RUN)
	$(UV_COMPILE) -c $(LOCK_DEV) --extra research -o requirements/research.lock

## make k8s-rules: deploy/k8s/prometheusrule.yaml from deploy/prometheus/alerts.yml (tests check they agree)
k8s-rules: $(STAMP_DEV)
	$(PY) scripts/k8s-prometheusrule.py

## make run: paper trading on the bundled real BTCUSDT capture, no arguments. On a terminal
## the daemon runs as its own job (bash -m), so Ctrl-C reaches it alone: it stops cleanly
## and `make run` exits with its status (0), not make's own 130 for an interrupt.
run: $(STAMP_RUN)
	@if [ -t 0 ]; then bash -mc '"$$0" run; exit $$?' $(VENV)/bin/mmbot; else $(VENV)/bin/mmbot run; fi

## make test: the system programs the tests run (scripts/install-test-deps.sh: apt-get as root,
## else one message naming them), linters, type checks, import contracts and the whole test suite
test: test-deps $(STAMP_DEV) lint typecheck contracts pytest

test-deps:
	bash scripts/install-test-deps.sh

lint: $(STAMP_DEV)
	$(VENV)/bin/ruff check mmbot tests benchmarks

typecheck: $(STAMP_DEV)
	$(VENV)/bin/mypy mmbot

contracts: $(STAMP_DEV)
	$(VENV)/bin/lint-imports

pytest: test-deps $(STAMP_DEV)
	$(VENV)/bin/pytest -q

## The capture fuzzer's slow profile: 150 random examples (make test runs 30, derandomized)
fuzz: $(STAMP_DEV)
	CAPTURE_FUZZ_EXAMPLES=150 CAPTURE_FUZZ_RANDOM=1 $(VENV)/bin/pytest -q tests/integrity/test_capture_fuzz.py

## Golden fills, the full matrix: 4 profiles x 3 fill models x latency 0/20 ms, on the
## compiled per-event path and the forced pure-Python fallback (make test runs 4 of them)
golden: $(STAMP_DEV)
	GOLDEN_MATRIX=full $(VENV)/bin/pytest -q tests/golden

## Slow container tests (Docker engine needed; .ci/run starts one)
test-containers: $(STAMP_DEV)
	$(VENV)/bin/pytest -q -m container -o addopts="-ra --strict-markers" tests/containers

## make test-calibration: sandbox runs against emulators with hidden venue settings, then
## mmbot calibrate must recover them (issue 33; minutes, so not part of make test)
test-calibration: test-deps $(STAMP_DEV)
	$(VENV)/bin/pytest -q -m calibration -o addopts="-ra --strict-markers" tests/loop

bench: $(STAMP_DEV)
	$(PY) -m benchmarks.run --full

bench-quick: $(STAMP_DEV)
	$(PY) -m benchmarks.run --quick

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache var mmbot/marketdata/_speedups.c mmbot/marketdata/_speedups.*.so
