# The two commands of the README:
#   make run    install everything and run the platform on its embedded default
#   make test   install everything and run the checks and the tests (.ci/run calls this)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= $(CURDIR)/var
export DATA_DIR
# platform/ is a source root (not a package); both roots go on the import path.
export PYTHONPATH := $(CURDIR):$(CURDIR)/platform

.PHONY: run test system system-test venv venv-test check pytest pytest-all js-test

system:  ## Debian packages the platform needs (ffmpeg)
	@command -v ffmpeg >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ffmpeg; }

system-test: system  ## + Chromium for browser tests, node for the JS unit tests, opencv-doc's clips
	@command -v /usr/bin/chromium >/dev/null && command -v node >/dev/null && \
	 [ -e /usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz ] || { \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium nodejs && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends opencv-doc; }

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

venv: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt

venv-test: venv
	$(BIN)/pip install -q -r requirements-test.txt
	# Meta's sam2 for the parity tests: --no-deps, or pip would replace torch with a CUDA build.
	$(BIN)/python -c "import sam2" 2>/dev/null || SAM2_BUILD_CUDA=0 $(BIN)/pip install -q --no-deps --no-build-isolation sam2==1.1.0

# A local demo (DEMO_MODE=1: generated SECRET_KEY in DATA_DIR, demo accounts, this machine only).
run: export DEMO_MODE := 1
run: system venv
	@case "$(HOST)" in 127.0.0.1|localhost|::1) ;; *) echo "make run is a local demo" \
	   "(DEMO_MODE=1) and binds to this machine only: HOST=$(HOST) refused;" \
	   "deploy with SECRET_KEY set instead (README, Configuration)" >&2; exit 1;; esac
	@mkdir -p $(DATA_DIR)
	$(BIN)/python manage.py migrate --noinput -v0
	@$(BIN)/python manage.py create_demo_users
	# a model for the workers: the promoted one, else the official tiny, else the demo model
	$(BIN)/python manage.py ensure_model
	@$(BIN)/celery -A workers worker -B -Q default,interactive,propagate,train --concurrency 1 \
	   --loglevel INFO --logfile $(DATA_DIR)/worker.log & worker=$$!; \
	 trap "kill $$worker 2>/dev/null; wait $$worker 2>/dev/null" EXIT INT TERM; \
	 echo ""; echo "  SAM 2 data engine is running: open http://$(HOST):$(PORT)/"; \
	 echo "  log in with a demo account above (its password is printed only when it is created)"; \
	 echo "  worker log: $(DATA_DIR)/worker.log   stop with Ctrl-C"; echo ""; \
	 $(BIN)/uvicorn dataengine.asgi:application --host $(HOST) --port $(PORT)

check:
	$(BIN)/ruff check .
	$(BIN)/mypy platform engine workers model tests benchmarks
	$(BIN)/lint-imports --no-cache
	DJANGO_SETTINGS_MODULE=tests.settings $(BIN)/python manage.py makemigrations --check --dry-run

pytest:
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The whole suite: everything but the browser tests on PYTEST_WORKERS processes (pytest-xdist; a
# file stays on one process, each process has its own test database and Redis database; one
# PyTorch thread each: two processes of two threads fought over two cores, 523 s against 220), then
# the browser tests alone, as their timings assume a machine that is not also running other tests.
PYTEST_WORKERS ?= 2
pytest-all:
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --ignore=tests/e2e
	$(BIN)/python -m pytest -q tests/e2e

# The pages' JS modules alone (frontend/static/js/lib); `make test` runs them through pytest
# (tests/frontend/test_rle_fixtures.py), so this target is for quick iteration.
js-test:
	node --test tests/frontend/*.test.mjs

test: system-test venv-test check pytest-all
