# Everyday commands. Only python3 is needed on a fresh clone: the first target that
# needs the virtualenv creates it, and it is reinstalled when requirements/*.txt change.

VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test lint bench bench-full clean

$(VENV): $(INSTALLED)

$(INSTALLED): requirements/base.txt requirements/dev.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -r requirements/dev.txt
	touch $@

run: $(INSTALLED)
	$(PYTHON) manage.py migrate --noinput
	$(PYTHON) manage.py trove_bootstrap_admin
	@echo ""
	@echo "Admin: http://127.0.0.1:$(PORT)/admin/  API: http://127.0.0.1:$(PORT)/api/  API docs: http://127.0.0.1:$(PORT)/api/docs/"
	@echo ""
	$(PYTHON) manage.py runserver 127.0.0.1:$(PORT)

# The PostgreSQL, S3 and browser tiers run when their service is reachable; set
# TROVE_REQUIRE_POSTGRES=1, TROVE_REQUIRE_S3=1 or TROVE_REQUIRE_BROWSER=1 to make them
# mandatory (.ci/run sets all three).
test: $(INSTALLED)
	$(PYTHON) -m pytest $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .

bench: $(INSTALLED)
	$(PYTHON) -m benchmarks

bench-full: $(INSTALLED)
	$(PYTHON) -m benchmarks --full

# Leaves .venv and data/ (your events and files) alone.
clean:
	rm -rf build .pytest_cache .ruff_cache *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
