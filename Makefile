# claimlens: `make demo` (embedded, no services) and `make test` (installs and starts everything it needs).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# pip on this machine warns about a missing local index on every package; keep the output readable
PIPQ := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
ENV := eval "$$(scripts/services env)" &&
PYTEST_ARGS ?=

.PHONY: venv demo services services-stop worker api test test-unit lint bench-env clean

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]' $(PIPQ)
	touch $@

demo: venv
	$(PY) -m claimlens.datasets.demo var/demo/claims >/dev/null
	rm -rf var/demo/data
	$(BIN)/claimlens scan var/demo/claims --data-dir var/demo/data
	@echo "Open the demo claims in the workbench: $(BIN)/claimlens ui --data-dir var/demo/data  (then http://127.0.0.1:8765/ui/)"

services: venv
	scripts/services start

services-stop:
	scripts/services stop

worker: services
	$(ENV) $(BIN)/claimlens db upgrade && \
	  OPENBLAS_NUM_THREADS=1 exec $(BIN)/celery -A claimlens.workers.celery_app worker -Q cpu,io --concurrency 2 --loglevel INFO

api: services
	$(ENV) $(BIN)/claimlens db upgrade && \
	  exec $(BIN)/uvicorn claimlens.api.main:app --host 127.0.0.1 --port 8000

test: venv
	CLAIMLENS_SERVICES_DB=claimlens_test scripts/services start
	scripts/services browser
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest -q tests/unit

lint: venv
	$(BIN)/ruff check claimlens tests

# torch + torchvision (CUDA build, runs on CPU) + imagededup for the benchmark peers and model training
bench-env:
	scripts/train-env.sh

clean:
	rm -rf var/demo
