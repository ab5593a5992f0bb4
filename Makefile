# Every target bootstraps .venv first; set-up is idempotent (a stamp file records it).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: the local CPU build; anything looser pulls CUDA wheels.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q

demo: venv
	$(BIN)/selfplay-gym demo

bench: venv
	$(BIN)/python benchmarks/tiny_model.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
