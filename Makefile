# mobb.scm — one file for every developer and CI command. Each target sets itself up.
#   make test   everything CI runs: sanity, lint, unit, integration, the local servers' contract, bench smoke
#   make demo   the rotation role on a local fleet: create, no-op, rotate, check (demo/run.py)
#   make bench  mobb.scm.rotate beside community.general on N local servers (BENCH_N, BENCH_FORKS)
#   make live   the modules against a real GitLab and Mobb named in the environment (README)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# ansible-core and pytest find the collection as mobb.scm through this link to the checkout.
COLLECTIONS := $(CURDIR)/.cache/collections
LINK := $(COLLECTIONS)/ansible_collections/mobb/scm
# ansible-test wants .../ansible_collections/mobb/scm/ as its working directory, and the
# checkout may live anywhere: sanity runs on a fresh copy of the files git would commit.
SANITY_ROOT ?= $(CURDIR)/.cache/sanity
SANITY_COPY := $(SANITY_ROOT)/ansible_collections/mobb/scm
# Two workers: the suites wait on servers and subprocesses far more than they compute.
PYTEST_ARGS ?= -n 2
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_HOME := $(CURDIR)/.cache/ansible-home
export PATH := $(BIN):$(PATH)

.PHONY: test sanity lint units server-contract integration live build demo bench bench-smoke clean

test: sanity lint units server-contract integration bench-smoke
	@echo "make test: all suites passed"

$(STAMP): requirements.txt test-requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r test-requirements.txt
	touch $@

$(LINK):
	mkdir -p $(dir $@)
	ln -sfn $(CURDIR) $@

venv: $(STAMP) $(LINK)

sanity: venv
	rm -rf $(SANITY_ROOT) && mkdir -p $(SANITY_COPY)
	git ls-files -co --exclude-standard | while read -r f; do [ -e "$$f" ] && echo "$$f"; done \
		| tar -cf - -T - | tar -xf - -C $(SANITY_COPY)
	pip_version=$$($(BIN)/python -c 'from ansible_test._internal.python_requirements import get_venv_packages as g; print(g(type("P", (), {"version": "3.11"})())["pip"])'); \
		mkdir -p ~/.ansible/test/cache; \
		cp .ci/get_pip_standin.py ~/.ansible/test/cache/get_pip_$${pip_version//./_}.py
	# The copy is its own git work tree: inside the checkout's, git would call it ignored
	# (.cache/) and ansible-test would find no files and skip every test.
	git -C $(SANITY_COPY) init --quiet
	cd $(SANITY_COPY) && $(BIN)/ansible-test sanity --python 3.11 --color no 2>&1 | tee $(SANITY_ROOT)/sanity.log
	@! grep -q 'All targets skipped' $(SANITY_ROOT)/sanity.log || { echo "sanity found no files to test"; exit 1; }
	@test ! -s tests/sanity/ignore-2.19.txt || { echo "sanity ignore entries are not allowed"; exit 1; }

lint: venv
	$(BIN)/antsibull-changelog lint
	if [ -n "$$(ls roles playbooks 2>/dev/null)" ]; then cd $(LINK) && $(BIN)/ansible-lint --offline roles playbooks; fi

# The inventory plugin's tests load it by name through ansible-core's collection loader,
# which changes how modules report warnings: they run in a process of their own.
units: venv
	$(BIN)/pytest tests/unit --ignore=tests/unit/plugins/inventory $(PYTEST_ARGS)
	$(BIN)/pytest tests/unit/plugins/inventory $(PYTEST_ARGS)

server-contract: venv
	$(BIN)/pytest tests/servers/contract $(PYTEST_ARGS)

integration: venv
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

LIVE_VARIABLES := GITLAB_URL GITLAB_TOKEN LIVE_GITLAB_PROJECT MOBB_API_URL MOBB_API_KEY
live:
	@missing=""; for name in $(LIVE_VARIABLES); do [ -n "$${!name:-}" ] || missing="$$missing $$name"; done; \
		[ -z "$$missing" ] || { echo "make live: not set:$$missing (see README.md, \"Testing against a real GitLab and Mobb\")" >&2; exit 2; }
	@$(MAKE) --no-print-directory venv
	$(BIN)/pytest tests/live -m live $(PYTEST_ARGS)

build: venv
	mkdir -p .cache/dist && $(BIN)/ansible-galaxy collection build --force --output-path .cache/dist

demo: venv
	$(BIN)/python demo/run.py

# Figures, not a timed test: wall time (also over Ansible's floor, one debug task per host),
# requests per token and peak memory (RSS and PSS) of both jobs, and the issue's targets.
# The last line of `make bench` is the main figures as one JSON object.
BENCH_N ?= 50
BENCH_FORKS ?= 10
bench: venv
	$(BIN)/python tests/benchmarks/bench_rotation.py -n $(BENCH_N) --forks $(BENCH_FORKS)

bench-smoke: venv
	$(BIN)/python tests/benchmarks/bench_rotation.py -n 3

clean:
	rm -rf .cache $(VENV) tests/output
