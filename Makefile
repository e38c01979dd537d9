# Two commands on a fresh machine: `make serve` and `make test`.
# Both create .venv (Python 3.11) with the pinned requirements; a second run reuses it.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP     := $(VENV)/.dev-installed
export PYTHONPATH := $(CURDIR)
export HF_HUB_OFFLINE := 1
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: serve test setup setup-dev browser espeak lint typecheck unit integration cluster bench clean

# `exec`: no shell stays between make and vpa (a shell would not pass on the SIGTERM that
# make forwards to its child). vpa stops cleanly on SIGTERM or Ctrl-C; GNU make then
# re-raises the signal on itself, so `make serve` ends with status 143 (130 for Ctrl-C).
# A container should run `.venv/bin/python main.py` itself (README, "Running it other ways").
serve: setup
	exec $(BIN)/python main.py

# tests/cluster starts Ray instances of its own (one GPU, a simulated multi-node cluster,
# and the benchmark scripts' --smoke runs, each in its own process): a second pytest
# session, after the one that shares a Ray instance across tests/integration.
test: setup-dev lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider --ignore=tests/cluster
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/cluster

setup: $(RUNTIME_STAMP)
setup-dev: $(DEV_STAMP) browser espeak

# Debian tools the tests need, installed when missing (sudo when not root); where that fails,
# make stops and says so: the tests are never skipped. $(call debian_tool,COMMAND,PACKAGE,WHY)
define debian_tool
	@command -v $(1) >/dev/null 2>&1 || { \
	  echo "$(1) is missing: apt-get install $(2)"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || ! command -v sudo >/dev/null 2>&1 || SUDO=sudo; \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $(2); } || true; \
	  command -v $(1) >/dev/null 2>&1 || { echo "make test needs Debian's $(2) for \
	$(3): apt-get install $(2)" >&2; exit 1; }; }
endef

# The web app's browser tests (tests/integration/test_web.py) drive Debian's chromium through
# Playwright (Playwright's own browser download cannot work here).
browser:
	$(call debian_tool,chromium,chromium,the browser tests)

# Generated speech: the benchmarks' unseen passages and conversations (their --smoke runs are
# tests in tests/cluster) are spoken by espeak-ng.
espeak:
	$(call debian_tool,espeak-ng,espeak-ng,the benchmarks' generated speech)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The last step installs the `vpa` command-line client (cli/) editable: .venv/bin/vpa.
# Resemblyzer (diarization) goes in without its dependencies (requirements-diarization.txt).
$(RUNTIME_STAMP): requirements.txt requirements-diarization.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-diarization.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import imageio_ffmpeg; print('ffmpeg:', imageio_ffmpeg.get_ffmpeg_exe())"
	touch $@

$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.txt requirements-openai-whisper.txt
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-openai-whisper.txt
	touch $@

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup-dev
	$(BIN)/mypy .

cluster: setup-dev
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/cluster

unit: setup-dev
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

integration: setup-dev
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/integration

bench: setup-dev
	$(BIN)/python -m pip install -q -r requirements-bench.txt
	$(BIN)/python bench/control_plane.py
	$(BIN)/python bench/transcribe.py
	$(BIN)/python bench/analyze.py
	$(BIN)/python bench/clips.py
	$(BIN)/python bench/full_job.py
	$(BIN)/python bench/cluster.py
	$(BIN)/python bench/diarize.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
