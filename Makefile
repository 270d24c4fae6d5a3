# Two commands on a fresh machine with only Python 3 and make: `make demo`, `make test`.
# Both create .venv and (re)install the project when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo install bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,fast]'
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) -m telephony_bridge.cli demo

bench: $(STAMP)
	$(PY) bench/audio.py
	$(PY) -m bench.load

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
