# digest: two commands set everything up.
#   make demo   the daily digest on the embedded defaults (seeds, SQLite, capture SMTP server)
#   make test   install what the tests need and run them (what CI runs)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DIGEST := $(BIN)/digest
# The capture server's port: the default config sends to it.
CAPTURE_PORT ?= 8025

.PHONY: demo test check bench clean services

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/activate

# The demo sends to its own capture server, on whatever port it was given, from a database
# of its own, made afresh each time (so a second `make demo` shows the mail again; the default
# database, var/digest.sqlite3, is yours and left alone).
demo: export DIGEST_SMTP__PORT = $(CAPTURE_PORT)
demo: export DIGEST_DATABASE_URL ?= sqlite:///var/demo.sqlite3
demo: $(BIN)/activate
	@if $(BIN)/python -c "import socket, sys; sys.exit(socket.socket().connect_ex(('127.0.0.1', $(CAPTURE_PORT))))"; then \
	  echo "port $(CAPTURE_PORT) is taken: another server there would get the demo's mail; stop it, or run: make demo CAPTURE_PORT=8026"; exit 1; \
	fi
	@rm -rf var/mail var/preview var/demo.sqlite3 var/demo.sqlite3-wal var/demo.sqlite3-shm; mkdir -p var
	$(DIGEST) init --seed
	@set -e; \
	$(DIGEST) capture --port $(CAPTURE_PORT) > var/capture.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null' EXIT; \
	$(BIN)/python -c "import socket, time; \
	  [time.sleep(0.1) for _ in range(100) if socket.socket().connect_ex(('127.0.0.1', $(CAPTURE_PORT)))]"; \
	kill -0 $$pid 2>/dev/null || { cat var/capture.log; echo "the capture server did not start (is port $(CAPTURE_PORT) taken?)"; exit 1; }; \
	$(DIGEST) send --list daily; \
	$(DIGEST) preview --list daily --subscriber odon.gyori@example.hu; \
	$(DIGEST) status --limit 3; \
	echo; echo "Captured mail: $$(ls var/mail/*.eml | wc -l) messages in var/mail/ (one line each in var/capture.log)"; \
	echo "Open the preview in a browser: var/preview/ (the .html file), or any .eml in a mail client."; \
	echo "The demo's database: $$DIGEST_DATABASE_URL (look around: DIGEST_DATABASE_URL=$$DIGEST_DATABASE_URL .venv/bin/digest status)"

test: $(BIN)/activate services
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/mypy bench  # the bench scripts: a renamed API must not break them unseen
	url=$$(bash scripts/test-postgres.sh) && DIGEST_TEST_POSTGRES_URL=$$url $(BIN)/pytest -q -n 3 --dist worksteal --durations=15

# External services the tests use (installed from Debian's packages when missing); the
# PostgreSQL test server is started, or found running (scripts/test-postgres.sh).
services:
	@command -v smtp-sink >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null; }
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v spamassassin >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq spamassassin >/dev/null; }
	@bash scripts/test-postgres.sh >/dev/null

check: test

bench: $(BIN)/activate services
	$(BIN)/python bench/table.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
