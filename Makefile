# mobb.scm — one file for every developer and CI command. Each target sets itself up.
#   make test   everything CI runs: sanity, lint, unit, integration, the local servers' contract, bench smoke,
#               and the matrix of ansible-core versions
#   make matrix sanity, unit and an integration subset under each supported ansible-core (MATRIX_VERSIONS)
#   make demo   the rotation role on a local fleet: create, no-op, rotate, check (demo/run.py)
#   make demo-events  GitLab's expiry webhook rotating a token through ansible-rulebook (demo/events.py)
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

.PHONY: test sanity lint units server-contract integration matrix live build demo demo-events java-runtime bench bench-smoke clean

test: sanity lint units server-contract integration bench-smoke matrix
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

# ansible-test sanity with the ansible-test in $(1) (a virtual environment's bin folder) on a
# copy of the collection under $(2); `make sanity` runs it with .venv, `make matrix` per version.
define sanity_run
	rm -rf $(2) && mkdir -p $(2)/ansible_collections/mobb/scm
	git ls-files -co --exclude-standard | while read -r f; do [ -e "$$f" ] && echo "$$f"; done \
		| tar -cf - -T - | tar -xf - -C $(2)/ansible_collections/mobb/scm
	pip_version=$$($(1)/python -c 'from ansible_test._internal.python_requirements import get_venv_packages as g; print(g(type("P", (), {"version": "3.11"})())["pip"])'); \
		mkdir -p ~/.ansible/test/cache; \
		cp .ci/get_pip_standin.py ~/.ansible/test/cache/get_pip_$${pip_version//./_}.py
	# The copy is its own git work tree: inside the checkout's, git would call it ignored
	# (.cache/) and ansible-test would find no files and skip every test.
	git -C $(2)/ansible_collections/mobb/scm init --quiet
	cd $(2)/ansible_collections/mobb/scm && PATH=$(1):$$PATH $(1)/ansible-test sanity --python 3.11 --color no 2>&1 | tee $(2)/sanity.log
	@! grep -q 'All targets skipped' $(2)/sanity.log || { echo "sanity found no files to test"; exit 1; }
	@! grep -qv '^\s*\(#.*\)\?$$' tests/sanity/ignore-*.txt 2>/dev/null || { echo "sanity ignore entries are not allowed"; exit 1; }
endef

sanity: venv
	$(call sanity_run,$(BIN),$(SANITY_ROOT))

lint: venv
	$(BIN)/antsibull-changelog lint
	if [ -n "$$(ls roles playbooks 2>/dev/null)" ]; then cd $(LINK) && $(BIN)/ansible-lint --offline roles playbooks; fi

# The unit tests with the pytest of bin folder $(1), extra arguments $(2). The inventory
# plugin's tests load it by name through ansible-core's collection loader, which changes
# how modules report warnings: they run in a process of their own.
units_run = $(1)/pytest tests/unit --ignore=tests/unit/plugins/inventory $(PYTEST_ARGS) $(2) \
	&& $(1)/pytest tests/unit/plugins/inventory $(PYTEST_ARGS) $(2)

units: venv
	$(call units_run,$(BIN),)

server-contract: venv
	$(BIN)/pytest tests/servers/contract $(PYTEST_ARGS)

# ansible-rulebook (the event-driven tests and demo) runs its rules on a Java 17 runtime.
java-runtime:
	@java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])' || { \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq openjdk-17-jre-headless; }

integration: venv java-runtime
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

# The supported ansible-core versions, each in a virtual environment of its own under
# .cache/matrix/<version>: sanity with that version's ansible-test, the unit tests, and a
# subset of the integration tests that covers the action (through the role and the
# playbooks, a service account's token included), a token module, the service-account
# module, a Mobb module, the playbooks failing on an unreadable inventory (ansible-core must
# keep what a failed inventory source set), twins found across hosts and the fleet action
# reading every host's variables through the variable manager, and module_defaults itself (their
# storage differs between versions).
# MATRIX_VERSIONS="2.16" runs one.
MATRIX_VERSIONS ?= 2.16 2.17 2.18 2.19
MATRIX_ROOT := $(CURDIR)/.cache/matrix
MATRIX_INTEGRATION ?= \
	tests/integration/test_role_rotation.py::test_first_run_creates_and_stores_then_a_rerun_changes_nothing \
	tests/integration/test_role_rotation.py::test_rotates_at_the_threshold_and_mobb_never_holds_a_dead_token \
	tests/integration/test_role_rotation.py::test_check_mode_decides_the_same_and_writes_nothing \
	tests/integration/test_role_rotation.py::test_bad_settings_fail_clearly_before_any_request \
	tests/integration/test_role_rotation.py::test_module_defaults_of_the_gitlab_and_mobb_groups_reach_the_action_under_the_role \
	tests/integration/test_playbook_fleet.py::test_rotate_keeps_a_fleet_fresh_and_a_daily_run_is_a_no_op \
	tests/integration/test_gitlab_personal_access_token.py::test_create_returns_a_working_token_and_a_rerun_changes_nothing \
	tests/integration/test_gitlab_personal_access_token.py::test_check_mode_decides_the_same_and_writes_nothing \
	tests/integration/test_gitlab_personal_access_token.py::test_diff_shows_ids_expiry_scopes_and_state_never_a_secret \
	tests/integration/test_mobb_integration.py::test_check_mode_then_store_then_rerun_changes_nothing \
	tests/integration/test_mobb_integration.py::test_bad_input_fails_with_a_clear_message_and_sends_nothing \
	tests/integration/test_role_service_account.py::test_a_group_service_account_is_created_stored_kept_and_rotated \
	tests/integration/test_gitlab_service_account.py::test_create_with_memberships_then_a_rerun_changes_nothing \
	tests/integration/test_inventory_plugin.py::test_an_unreadable_mobb_fails_rotate_and_check_with_the_plugins_message[bad-key] \
	tests/integration/test_role_twins.py::test_two_hosts_with_one_gitlab_url_are_both_refused

# test-requirements.txt names the ansible-core of .venv; each matrix venv gets its own.
.PRECIOUS: $(MATRIX_ROOT)/%/venv/.installed
$(MATRIX_ROOT)/%/venv/.installed: requirements.txt test-requirements.txt
	rm -rf $(MATRIX_ROOT)/$*/venv && $(PYTHON) -m venv $(MATRIX_ROOT)/$*/venv
	grep -v '^ansible-core' test-requirements.txt > $(MATRIX_ROOT)/$*/test-requirements.txt
	$(MATRIX_ROOT)/$*/venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(MATRIX_ROOT)/$*/venv/bin/python -m pip install --quiet --disable-pip-version-check "ansible-core~=$*.0" \
		-r requirements.txt -r $(MATRIX_ROOT)/$*/test-requirements.txt
	touch $@

# One version: `make matrix-2.16`; `make -k` runs all three parts even if one fails.
matrix-%: matrix-sanity-% matrix-units-% matrix-integration-%
	@echo "make matrix-$*: passed"
matrix-sanity-%: $(MATRIX_ROOT)/%/venv/.installed
	$(call sanity_run,$(MATRIX_ROOT)/$*/venv/bin,$(MATRIX_ROOT)/$*/sanity)
matrix-units-%: $(MATRIX_ROOT)/%/venv/.installed $(LINK)
	$(call units_run,$(MATRIX_ROOT)/$*/venv/bin,-p no:cacheprovider)
matrix-integration-%: $(MATRIX_ROOT)/%/venv/.installed $(LINK)
	$(MATRIX_ROOT)/$*/venv/bin/pytest $(MATRIX_INTEGRATION) $(PYTEST_ARGS) -p no:cacheprovider

# Every version, even after one fails; then a line per version and the time it took.
matrix:
	@mkdir -p $(MATRIX_ROOT); failed=""; : > $(MATRIX_ROOT)/summary.txt; \
	for v in $(MATRIX_VERSIONS); do \
		start=$$SECONDS; mkdir -p $(MATRIX_ROOT)/$$v; \
		if $(MAKE) -k --no-print-directory matrix-$$v > $(MATRIX_ROOT)/$$v/matrix.log 2>&1; then result=passed; else result=FAILED; failed="$$failed $$v"; fi; \
		core=$$($(MATRIX_ROOT)/$$v/venv/bin/python -c 'import ansible.release as r; print(r.__version__)' 2>/dev/null || echo '?'); \
		sanity=$$(grep -c "^Running sanity test" $(MATRIX_ROOT)/$$v/sanity/sanity.log 2>/dev/null || true); \
		sanity_failed=$$(grep -oE 'The [0-9]+ sanity test' $(MATRIX_ROOT)/$$v/sanity/sanity.log 2>/dev/null | grep -oE '[0-9]+' || echo 0); \
		tests=$$(grep -E '^=+ .*(passed|failed|error).* in [0-9.]+s' $(MATRIX_ROOT)/$$v/matrix.log | sed -E 's/^=+ | =+$$//g' | paste -sd'|' - || true); \
		echo "ansible-core $$core: $$result in $$((SECONDS - start))s; sanity: $${sanity:-0} tests, $$sanity_failed failed; units | integration: $$tests" | tee -a $(MATRIX_ROOT)/summary.txt; \
	done; \
	[ -z "$$failed" ] || { echo "make matrix: failed on$$failed (see $(MATRIX_ROOT)/<version>/matrix.log)"; exit 1; }

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

demo-events: venv java-runtime
	$(BIN)/python demo/events.py

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
