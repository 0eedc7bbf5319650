# The README's two commands: `make run` and `make test`. Both create .venv on first use and
# install the pinned dependencies once; the stamp file makes later calls instant.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test quick report clean-venv

run: $(STAMP)
	$(PY) run_all.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)

quick: $(STAMP)
	$(PY) run_all.py --quick $(ARGS)

# Rebuild report.md and the figures from the tables in results/, without training.
report: $(STAMP)
	$(PY) -m comparisons.report results

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "error: no python3.11 or python3 on the PATH; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'" >&2; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

clean-venv:
	rm -rf $(VENV)
