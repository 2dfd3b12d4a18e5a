# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install engine demo test bench bench-docker clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Re-install when the package's metadata changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,examples]'
	touch $@

install: $(VENV)/.installed

# Deploy the quickstart notebook's cell with the process runtime, call it through the
# gateway, print the answer, stop everything. Its own state and runtime folders.
demo: install
	@tmp=$$(mktemp -d); \
	JUPYTER_RUNTIME_DIR=$$tmp/runtime JUPYTER_DEPLOY_STATE_DIR=$$tmp/state \
	  $(BIN)/jupyter-deploy run examples/quickstart.ipynb --exit-after-run --gateway-port=0 \
	    --gateway-grpc-port=0; \
	status=$$?; rm -rf $$tmp; exit $$status

# The Docker engine and the local base image the docker tests use (scripts/). Where no engine
# can be had (no root, no privileges to run dockerd), the run goes on and the docker tests
# are skipped, each saying why.
engine:
	@scripts/docker-engine.sh && scripts/base-image.sh || \
	  echo "make: WARNING: no Docker engine or base image (see above): the docker tests will be skipped" >&2

test: install engine
	$(BIN)/python -m pytest

# Needs Debian's wrk (apt-get install wrk) and two cores: see benchmarks/README.md.
bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/aliases.py
	$(BIN)/python benchmarks/protocols.py

bench-docker: install engine
	$(BIN)/python benchmarks/containers.py

clean:
	rm -rf $(VENV) build dist *.egg-info
