# Licentia — every target sets up what it needs from scratch (the venv, the packages).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PROTOS := $(wildcard proto/licentia/v1/*.proto)
PROTOC = $(PY) -m grpc_tools.protoc -Iproto

.PHONY: all install install-bench install-fuzz test lint typecheck proto proto-check pytest demo demo-recovery demo-core bench load fuzz crash clean

all: test

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The peers `make bench` compares against, and the load tool's process probe: a `bench` extra,
# never runtime dependencies. atheris (coverage-guided fuzzing) is the `fuzz` extra.
BENCH_STAMP := $(VENV)/.bench-stamp
FUZZ_STAMP := $(VENV)/.fuzz-stamp

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

$(FUZZ_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,fuzz]'
	@touch $(FUZZ_STAMP)

install-bench: $(BENCH_STAMP)
install-fuzz: $(FUZZ_STAMP)

## make test: lint, strict typing, generated-code drift, then the test suite.
test: lint typecheck proto-check pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## make typecheck: mypy --strict over the package laid out as installed (pyproject, [tool.mypy]).
TYPING := build/typing/licentia
typecheck: $(STAMP)
	@rm -rf $(TYPING) && mkdir -p $(TYPING) && \
	for f in proto/licentia/*; do ln -s "../../../$$f" $(TYPING)/; done && \
	for d in services clients transport; do ln -s "../../../$$d" $(TYPING)/$$d; done
	$(VENV)/bin/mypy

## make pytest: the suite on every core (`PYTEST_WORKERS=0` runs it in this one process).
PYTEST_WORKERS ?= auto
pytest: $(STAMP)
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS)

## make proto: regenerate proto/licentia/v1/*_pb2*.py(i) from the .proto files.
proto: $(STAMP)
	$(PROTOC) --python_out=proto --pyi_out=proto --grpc_python_out=proto $(PROTOS)

## make proto-check: fail if regenerating would change the committed generated code.
proto-check: $(STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PROTOC) --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp $(PROTOS) && \
	for f in $$tmp/licentia/v1/*; do \
	  diff -u "proto/licentia/v1/$$(basename $$f)" "$$f" || { echo "generated code is stale: run 'make proto'" >&2; exit 1; }; \
	done && \
	for f in proto/licentia/v1/*_pb2*.py*; do \
	  test -e "$$tmp/licentia/v1/$$(basename $$f)" || { echo "$$f has no .proto: remove it" >&2; exit 1; }; \
	done && echo "generated code is up to date"

## make demo: the whole story with the real tools against a real exchange, narrated.
demo: $(STAMP)
	$(PY) demo/exchange_story.py

## make demo-recovery: the stolen-laptop story: the thief's approval refused after recovery from
## the paper phrase, what the stolen device approved revoked, the thief's payout cancelled.
demo-recovery: $(STAMP)
	$(PY) demo/recovery_story.py

## make demo-core: the protocol alone (no server): tokens, scope, presentations, revocation.
demo-core: $(STAMP)
	$(PY) demo/story.py

## make bench: benchmarks, one JSON object per line, ratios against limits in the same run.
## Every bench/bench_*.py runs (one after the other, even after a failure); each exits 0 when
## every figure with a target meets it (bench/report.py), 1 when one is missed or it crashed.
## make bench fails, naming them, if any script did not exit 0.
BENCHES := $(sort $(wildcard bench/bench_*.py))
bench: $(BENCH_STAMP)
	@failed=""; for b in $(BENCHES); do \
	  echo "== $$b" >&2; $(PY) $$b || failed="$$failed $$b (exit $$?)"; \
	done; \
	if [ -n "$$failed" ]; then echo "make bench: failed:$$failed" >&2; exit 1; fi

## make load: a mixed workload against a real licentia-server; fails on any error or unbounded memory.
load: $(BENCH_STAMP)
	$(PY) bench/load.py

## make fuzz: coverage-guided fuzzing (atheris) of the parsers, bounded in time;
## `make fuzz FUZZ_ARGS="--seconds 600"` passes flags on (`python bench/fuzz.py --help`).
FUZZ_ARGS ?=
fuzz: $(FUZZ_STAMP)
	$(PY) bench/fuzz.py $(FUZZ_ARGS)

## make crash: the long form of the crash test (more crashes than inside `make test`); it
## takes minutes, so pytest names each test as it runs (-vv: pyproject adds -q) and each round prints a line.
crash: $(STAMP)
	LICENTIA_PROGRESS=1 LICENTIA_CRASH_ROUNDS=200 LICENTIA_STARTUP_CRASH_ROUNDS=50 \
	  $(VENV)/bin/pytest -vv tests/integration/test_crash.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
