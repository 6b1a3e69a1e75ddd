# The project's commands. Each one sets itself up on a fresh machine.
#   make demo   the main job (see README)
#   make test   lint + the whole test suite
#   make bench  speed and memory against the seed and the peers (docs/BENCHMARKS.md)
#   make fuzz   the property tests with 1,500 random examples each instead of CI's 40 (a few minutes)
#   make docs   the documentation site (guides, examples, API reference) into site/, strict
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned to the CPU wheel that ships on the development machines; the package accepts a range.
TORCH ?= torch==2.13.0

.PHONY: demo test lint bench fuzz docs clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[cli,dev]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/gumbel-sinkhorn jigsaw demo

lint: $(VENV)/.installed
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest

fuzz: $(VENV)/.installed
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q $$(grep -rl --include='test_*.py' hypothesis tests)

bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) benchmarks/run.py

# --strict: a broken link or an unresolved cross-reference fails the build (tests/test_docs_site.py)
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict
	@echo "the site: site/index.html"

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache site
