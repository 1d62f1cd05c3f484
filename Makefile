# mmbot: two commands for users (make run, make test), more for developers.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test test-deps lint typecheck contracts pytest test-containers fuzz bench bench-quick clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(PY)
	$(PIP) install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

## make run: paper trading on the bundled real BTCUSDT capture, no arguments
run: $(STAMP_RUN)
	$(VENV)/bin/mmbot run

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

## Slow container tests (Docker engine needed; .ci/run starts one)
test-containers: $(STAMP_DEV)
	$(VENV)/bin/pytest -q -m container -o addopts="-ra --strict-markers" tests/containers

bench: $(STAMP_DEV)
	$(PY) -m benchmarks.run --full

bench-quick: $(STAMP_DEV)
	$(PY) -m benchmarks.run --quick

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache var
