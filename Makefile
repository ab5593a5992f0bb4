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

# Benchmarks are not tests: each prints its figures, ends with one RESULT line and appends a
# row to benchmarks/results/<name>.md. On 2 CPU cores the whole set takes about 15 minutes.
bench: venv
	$(BIN)/python benchmarks/tiny_model.py
	$(BIN)/python benchmarks/grpo_vs_trl.py --size tiny
	$(BIN)/python benchmarks/grpo_vs_trl.py --size larger --steps 8
	$(BIN)/python benchmarks/rollout.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/scoring_memory.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
