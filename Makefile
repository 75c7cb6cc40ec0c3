# Two commands on a fresh clone: `make demo` and `make test`. Both build .venv (Python 3.11) and .venv-rasa
# (Python 3.10 with Rasa, for the chatbot) first.

SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed-stamp
# Python 3.11: from PATH, else from pyenv; override with `make PYTHON311=/path/to/python3.11`.
PYTHON311 ?= $(shell command -v python3.11 2>/dev/null || \
	(command -v pyenv >/dev/null && ls -d "$$(pyenv root)"/versions/3.11*/bin/python3.11 2>/dev/null | tail -n 1))
PIP_QUIET := --quiet --disable-pip-version-check
# Rasa's environment: `engage bot setup` finds Python 3.10 (ENGAGE_RASA_PYTHON310 or PYTHON310, e.g.
# `make PYTHON310=/path/to/python3.10`, else python3.10 on PATH, else pyenv's), installs rasa==3.6.21 under
# bot/constraints.txt and writes the stamp last; a complete environment is kept as it is.
RASA_VENV := .venv-rasa
RASA_STAMP := $(RASA_VENV)/.installed-stamp

.PHONY: demo test lint venv venv-rasa clean bench chromium

venv: $(STAMP)

venv-rasa: $(RASA_STAMP)

$(RASA_STAMP): $(STAMP) bot/constraints.txt
	@ENGAGE_RASA_VENV="$(CURDIR)/$(RASA_VENV)" $(VENV)/bin/engage bot setup --workspace . \
		2> >(grep -v "^WARNING: Location" >&2)
	@touch $@

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON311)" ] || ! "$(PYTHON311)" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then \
		echo "error: Python 3.11 not found; install it or run make PYTHON311=/path/to/python3.11" >&2; exit 1; fi
	@echo "creating $(VENV) with $(PYTHON311)"
	@test -x $(VENV)/bin/python || "$(PYTHON311)" -m venv $(VENV)
	@$(VENV)/bin/python -m pip install $(PIP_QUIET) -e '.[test,production]' 2> >(grep -v "^WARNING: Location" >&2)
	@touch $@

demo: $(STAMP) $(RASA_STAMP)
	$(VENV)/bin/engage demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

# The browser tests drive Debian's Chromium (Playwright brings only its driver, never a browser): installed
# from Debian's packages when missing, as root; otherwise the command to run is printed.
chromium:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" != 0 ]; then echo "error: run: sudo apt-get install chromium" >&2; exit 1; fi; \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get install -y -qq chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; }

test: lint $(RASA_STAMP) chromium
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python bench/ingest.py

clean:
	rm -rf $(VENV) $(RASA_VENV) var .pytest_cache .ruff_cache
