# Every target builds .venv first when it is missing or older than pyproject.toml.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
BIN := $(VENV)/bin

.PHONY: run test fuzz bench screenshots venv system-deps clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "mlxtui needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/mlxtui $(ARGS)

system-deps:
	@scripts/system-deps.sh

# One pytest worker per core plus one (at most 5): a third of the suite's time is spent waiting on
# subprocesses, servers and terminals, so one more worker than cores keeps both busy (2 cores: 9:36 -> 7:31).
WORKERS ?= $(shell $(PYTHON) -c 'import os; print(min(5, (os.cpu_count() or 1) + 1))')
PYTEST_ARGS ?= -n $(WORKERS) --durations=30

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The property-based tests with fresh random examples, FUZZ_ROUNDS times (`make test` draws fixed ones).
FUZZ_ROUNDS ?= 5
FUZZ_TESTS := $(shell grep -rl '@given' tests)
fuzz: $(STAMP)
	for i in $$(seq $(FUZZ_ROUNDS)); do MLXTUI_HYPOTHESIS=explore $(BIN)/python -m pytest -q -x $(FUZZ_TESTS) || exit 1; done

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache
