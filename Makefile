# t2m: `make run` brings the stack up, `make test` runs the suite. Both set everything up first.
VENV    := .venv
PYTHON  ?= python3
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Manim builds pycairo/manimpango (pango, cairo); MathTex needs LaTeX + dvisvgm; narration uses
# espeak-ng (and Festival's HTS voice `festival:us_slt`); the render sandbox uses unshare
# (util-linux); tests use pgrep (procps) and drive Debian's chromium through playwright
# (playwright cannot download browsers here).
APT_PACKAGES := libpango1.0-dev libcairo2-dev pkg-config texlive-latex-base texlive-latex-extra \
	texlive-fonts-recommended dvisvgm espeak-ng festival festvox-us-slt-hts util-linux procps \
	chromium curl bubblewrap

.PHONY: setup apt run test test-fast lint format lock histories schema-snapshot
setup: apt $(VENV)/.installed

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing system packages:" $$missing; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

# requirements.lock pins every dependency (as constraints: the image installs only the runtime ones).
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -U pip
	$(VENV)/bin/pip install -q -c requirements.lock -e ".[dev]"
	$(VENV)/bin/python -m t2m.authoring.docs
	touch $@

# Re-resolve the lock from pyproject.toml in a fresh venv (after changing a dependency).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q -U pip && .lock-venv/bin/pip install -q ".[dev]"
	{ sed -n '1,2p' requirements.lock; .lock-venv/bin/pip freeze --exclude-editable | grep -v '^t2m'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

run: setup
	$(VENV)/bin/t2m up

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n 3 --dist loadfile --no-loadscope-reorder --durations=20

# The fast lane: tests that need at most the session's Temporal dev server and PostgreSQL
# (workflow logic with activities faked, models, style rules, budgets, layers, the offline
# model, replay...), no renders, S3, browser or processes of their own, and no slow ones.
test-fast: setup
	$(VENV)/bin/pytest -q -n 2 -m "not (s3 or render or stack or browser or jail or slow)"

lint:
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Re-record the workflow histories tests/test_replay.py replays (real dev server, worker, renders;
# about a minute), then refresh the boundary-model snapshot unless a model change breaks it.
histories: setup
	$(VENV)/bin/python -m tests.histories.record

# Accept today's boundary models as the snapshot, breaking changes included (README: Changing
# workflow code).
schema-snapshot: setup
	$(VENV)/bin/python -m tests.histories.record --schema-only
