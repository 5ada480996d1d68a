# Everyday commands. Only python3 is needed on a fresh clone: the first target that
# needs the virtualenv creates it. One .venv serves every target; each requirement set has
# its own stamp file, so `make run` installs only requirements/base.txt, `make test`,
# `make lint`, `make docs` and `make bench` add requirements/dev.txt, and a set is
# reinstalled when its file changes.

VENV := .venv
PYTHON := $(VENV)/bin/python
BASE := $(VENV)/.installed-base
DEV := $(VENV)/.installed-dev
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test lint docs bench bench-full clean

$(PYTHON):
	python3 -m venv $(VENV)

$(BASE): requirements/base.txt | $(PYTHON)
	$(PYTHON) -m pip install -r requirements/base.txt
	touch $@

$(DEV): requirements/dev.txt requirements/s3.txt $(BASE)
	$(PYTHON) -m pip install -r requirements/dev.txt
	touch $@

run: $(BASE)
	$(PYTHON) manage.py migrate --noinput
	$(PYTHON) manage.py trove_bootstrap_admin
	@echo ""
	@echo "Admin: http://127.0.0.1:$(PORT)/admin/  API: http://127.0.0.1:$(PORT)/api/  API docs: http://127.0.0.1:$(PORT)/api/docs/"
	@echo ""
	$(PYTHON) manage.py runserver 127.0.0.1:$(PORT)

# The PostgreSQL, S3 and browser tiers run when their service is reachable; set
# TROVE_REQUIRE_POSTGRES=1, TROVE_REQUIRE_S3=1 or TROVE_REQUIRE_BROWSER=1 to make them
# mandatory (.ci/run sets all three).
test: $(DEV)
	$(PYTHON) -m pytest $(PYTEST_ARGS)

# ruff over everything; mypy over trove/ (configured in pyproject.toml).
lint: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The documentation site (docs/, mkdocs.yml) into site/; any warning is an error.
docs: $(DEV)
	$(VENV)/bin/mkdocs build --strict

bench: $(DEV)
	$(PYTHON) -m benchmarks

bench-full: $(DEV)
	$(PYTHON) -m benchmarks --full

# Leaves .venv and data/ (your events and files) alone.
clean:
	rm -rf build site .pytest_cache .ruff_cache .mypy_cache *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
