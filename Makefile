# The README's two commands: `make run` and `make test`. Both create .venv on first use and
# install the pinned dependencies once; the stamp file makes later calls instant.
#
# The interpreter: PYTHON if given (`make test PYTHON=python3.13`), else the newest supported
# python3.1x on the PATH, else python3 if it is a supported version. Versions are checked by
# running the interpreter: a name on the PATH (a pyenv shim, say) may exist and still not run.
SUPPORTED  := 3.13 3.12 3.11
CANDIDATES := python3.13 python3.12 python3.11 python3
VENV       := .venv
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.installed-stamp
CONSTRAINTS := constraints.txt

# "3.12" for an interpreter that runs, nothing otherwise
version_of = $(if $(1),$(shell $(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null))
newest_supported = $(firstword $(foreach p,$(CANDIDATES),$(if $(filter $(SUPPORTED),$(call version_of,$(p))),$(p))))

PYTHON_GIVEN := $(filter command line environment,$(origin PYTHON))
# looked up once, and only when a recipe needs it (an installed .venv makes later calls instant)
PYTHON ?= $(eval PYTHON := $(newest_supported))$(PYTHON)

ifneq ($(PYTHON_GIVEN),)
  # an interpreter named explicitly: a .venv of another Python version is made again for it
  ifneq ($(call version_of,$(PYTHON)),$(call version_of,$(PY)))
    .PHONY: $(STAMP)
  endif
endif

.PHONY: run test test-long quick report clean-venv

run: $(STAMP)
	$(PY) run_all.py $(ARGS)

# two pytest workers (pytest-xdist): the suite spends most of its time in TensorFlow start-ups and
# subprocesses, one core each. Whole files go to a worker (module fixtures run once), slow files first
# (tests/conftest.py orders them); `make test ARGS="-n 0"` runs everything in this one process.
# `make test` is every test but the long tier (marker "long": multi-worker runs broken on purpose or run
# long, each starting its own cluster); `make test-long` runs that tier, and CI (.ci/run) runs both.
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder -m "not long" $(ARGS)

test-long: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder -m long $(ARGS)

quick: $(STAMP)
	$(PY) run_all.py --quick $(ARGS)

# Rebuild report.md and the figures from the tables in results/, without training, and docs/implementations.md
# from the registry.
report: $(STAMP)
	$(PY) -m comparisons.report results

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@want="$(call version_of,$(PYTHON))"; \
	case " $(SUPPORTED) " in *" $$want "*) ;; *) \
	  if [ -z "$(PYTHON)" ]; then \
	    echo "error: no supported Python found (tried $(CANDIDATES)); install Python 3.11, 3.12 or 3.13, or run 'make $(or $(MAKECMDGOALS),test) PYTHON=/path/to/python3.13'" >&2; \
	  elif [ -z "$$want" ]; then \
	    echo "error: PYTHON=$(PYTHON) does not run; give the path of a Python 3.11, 3.12 or 3.13 interpreter" >&2; \
	  else \
	    echo "error: PYTHON=$(PYTHON) is Python $$want; this study runs on Python 3.11, 3.12 or 3.13 (TensorFlow 2.21's wheels and our pins)" >&2; \
	  fi; exit 2;; \
	esac; \
	if [ -n "$(PYTHON_GIVEN)" ] && [ -x $(PY) ] && [ "$(call version_of,$(PY))" != "$$want" ]; then \
	  echo "$(VENV) is not Python $$want: making it again" >&2; rm -rf $(VENV); \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[test]"
	touch $(STAMP)

clean-venv:
	rm -rf $(VENV)
