# `make test` and `make demo` set everything up on a new machine: they create .venv when it
# is missing and (re)install the project into it whenever pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: test demo bench docs clean

$(VENV)/.installed-%: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$*]"
	touch $@

test: $(VENV)/.installed-dev
	$(PY) -m ruff check lamina tests examples benchmarks docs
	JAX_PLATFORMS=cpu $(PY) -m pytest -n auto -q

demo: $(VENV)/.installed-examples
	$(PY) examples/digits.py

# The documentation site, into site/ (open site/index.html); tests/test_docs_site.py builds it in
# make test too. The variables silence a notice some mkdocs plugins print about mkdocs 2.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(PY) -m mkdocs build --strict

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/overhead.py

clean:
	rm -rf $(VENV) build site *.egg-info
