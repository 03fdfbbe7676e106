# Set-up, demo, tests. `make demo` and `make test` work on a fresh machine (see README).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch goes in first, pinned, so that nothing pulls a multi-GB CUDA build onto a CPU machine.
# On a GPU machine: make setup TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev

.PHONY: setup demo test test-fast lint bench clean

setup: $(VENV)/.installed

PLUGINS := plugins/mmm-lang-ko
$(VENV)/.installed: pyproject.toml $(wildcard plugins/*/pyproject.toml plugins/*/src/*/*.py)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	# the Korean plugin is installed the way a user installs a third-party language
	$(PY) -m pip install -q $(foreach p,$(PLUGINS),./$(p))
	touch $@

demo: setup
	rm -rf demo-out
	$(PY) -m graphs.translate --input examples/demo.jsonl --source ja --target en zh \
		--out demo-out --replay examples/replay.jsonl
	$(PY) -m eval.score --run demo-out
	$(PY) -m eval.report demo-out
	$(PY) -m eval.score --pred demo-out/en/accepted.jsonl --refs examples/references/en.jsonl
	$(PY) -m eval.score --pred demo-out/zh/accepted.jsonl --refs examples/references/zh.jsonl
	$(PY) -m eval.export demo-out --to demo-out/dataset

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

# the suite without the tests marked slow (a quick check while working; CI runs `make test`)
test-fast: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) bench/word_tokenizers.py
	$(PY) bench/graph_throughput.py

clean:
	rm -rf demo-out .pytest_cache .mypy_cache .ruff_cache
