# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install hub lint engine swarm-lab browser promtool ui-unit demo test bench bench-docker clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Re-install when the package's metadata or the JupyterLab extension's sources change (the
# install builds the extension with jlpm: see [tool.hatch.build.hooks.jupyter-builder]).
UI_SOURCES := labextension/package.json labextension/yarn.lock \
	$(shell find labextension/src labextension/style labextension/schema -type f 2>/dev/null)
$(VENV)/.installed: pyproject.toml $(UI_SOURCES) | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,examples]'
	touch $@

install: $(VENV)/.installed

# The JupyterHub tests (tests/hub) run a real hub: jupyterhub from PyPI and
# configurable-http-proxy from npm, under .cache/chp; without npm they are skipped.
CHP := .cache/chp/node_modules/.bin/configurable-http-proxy
hub: install
	$(BIN)/python -m pip install -q 'jupyterhub>=6.1,<7'
	@[ -x $(CHP) ] || (command -v npm >/dev/null && \
	  npm install --silent --no-audit --no-fund --prefix .cache/chp configurable-http-proxy@5) || \
	  echo "make: no npm: the JupyterHub tests will be skipped" >&2

# The gate: ruff (pyflakes, bugbear, imports, pyupgrade, async, simplify) and mypy, strict on
# the gateway, the supervisor, the HTTP layer and the runtimes (pyproject.toml).
lint: install
	$(BIN)/ruff check jupyter_deploy tests benchmarks examples
	$(BIN)/mypy

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

# The two-host Swarm of the swarm tests (scripts/swarm-lab.sh: two dockerd in network
# namespaces, a registry); `make test` tears it down after. Without root or `ip netns`, the
# swarm tests are skipped, saying why.
swarm-lab: engine
	@if [ "$$(id -u)" = 0 ] && ip netns list >/dev/null 2>&1; then scripts/swarm-lab.sh up; \
	else echo "make: no root or no ip netns: the swarm tests will be skipped" >&2; fi

# The browser tests drive Debian's Chromium through Python's playwright (never a browser
# download); without root to install it, they are skipped and pytest says why.
browser:
	@[ -x /usr/bin/chromium ] || [ "$$(id -u)" != 0 ] || \
	  (apt-get update -qq && apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium)

# The metrics tests check the gateway's /metrics with Prometheus's own promtool (Debian's
# prometheus package; the tests never start its server); without root, they are skipped.
promtool:
	@[ -x /usr/bin/promtool ] || [ "$$(id -u)" != 0 ] || \
	  (apt-get update -qq && apt-get -o DPkg::Lock::Timeout=300 install -y -qq prometheus)

# The panel's state logic (jest).
ui-unit: install
	cd labextension && PATH="$(CURDIR)/$(BIN):$$PATH" jlpm install --silent && \
	  PATH="$(CURDIR)/$(BIN):$$PATH" jlpm test

# The lint and type gate first, then the pure policies (tests/unit, about a second), then
# everything else, the browser tests included.
test: install hub lint engine swarm-lab browser promtool ui-unit
	$(BIN)/python -m pytest -q --confcutdir=tests/unit tests/unit
	$(BIN)/python -m pytest --ignore=tests/unit --durations=20; status=$$?; scripts/swarm-lab.sh down; exit $$status

# Needs Debian's wrk (apt-get install wrk) and two cores: see benchmarks/README.md.
bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/aliases.py
	$(BIN)/python benchmarks/protocols.py
	$(BIN)/python benchmarks/oip.py

bench-docker: install engine
	$(BIN)/python benchmarks/containers.py

clean:
	rm -rf $(VENV) build dist *.egg-info jupyter_deploy/labextension labextension/lib \
	  labextension/node_modules
