# Two commands on a fresh machine with only Python 3 and make: `make demo`, `make test`.
# Both create .venv and (re)install the project when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck demo install bench clean

# setup.py and the C source too: the resampler's compiled kernels are built by the install.
$(STAMP): pyproject.toml setup.py telephony_bridge/audio/_polyphase.c
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,fast]'
	@touch $(STAMP)

install: $(STAMP)

# ruff (rules and format options in pyproject.toml) over the package and the tests.
# Not yet a prerequisite of `test`: the tree is reformatted once, last (`ruff format telephony_bridge`),
# then the remaining findings are fixed and `test` becomes `test: lint typecheck`.
lint: $(STAMP)
	$(VENV)/bin/ruff check telephony_bridge tests
	$(VENV)/bin/ruff format --check telephony_bridge

# mypy over telephony_bridge/ ([tool.mypy] in pyproject.toml).
typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) -m telephony_bridge.cli demo

bench: $(STAMP)
	$(PY) bench/audio.py
	$(PY) -m bench.load

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
	find telephony_bridge -name '*.so' -delete
