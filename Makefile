# Every target sets up what it needs: a fresh clone runs `make run` or `make test` directly.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: run test check lint bench dataset chromium postgres clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,parquet,postgres,report,sweep]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m apis_emulator serve $(ARGS)

# Debian's chromium for the page tests; never a downloaded browser.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL server for the database tests (they start their own on a free loopback port).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql for the database tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

test: $(STAMP) chromium postgres
	$(PY) -m pytest -q --durations=30 $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check src tests bench tools
	$(PY) -m mypy
	$(PY) -m mypy --config-file tests/mypy.ini tests

check: lint test

bench: $(STAMP)
	$(PY) bench/run_all.py $(ARGS)

dataset: $(STAMP)
	$(PY) -m pip install -q -e '.[dataset]'
	$(PY) tools/make_dataset.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
