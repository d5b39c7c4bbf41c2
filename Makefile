# segctl: `make lab` runs the demo, `make test` runs every test. Both set up a fresh Debian 12
# machine first (as root): Debian packages, Open vSwitch, and the virtualenv in .venv.
# FRAMEWORK=os-ken: the same on os-ken instead of Ryu, in a virtualenv of its own (.venv-os-ken);
# there `make test` runs the unit tests and the Mininet smoke test (README: "Ryu or os-ken").
# SCENARIO=rollout: `make lab` takes the lab from monitor to enforce (map, suggest, replay).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
FRAMEWORK ?= ryu
ifeq ($(FRAMEWORK),ryu)
VENV := .venv
TESTS := tests
else ifeq ($(FRAMEWORK),os-ken)
VENV := .venv-os-ken
TESTS := tests/unit tests/e2e/test_smoke.py
else
$(error FRAMEWORK is ryu or os-ken, not "$(FRAMEWORK)")
endif
# segctl run picks the framework by this variable (segctl/framework.py), whatever else is installed.
export SEGCTL_FRAMEWORK := $(FRAMEWORK)
PY := $(VENV)/bin/python
SYSTEM_PYTHON := /usr/bin/python3
APT_PACKAGES := openvswitch-switch mininet iputils-ping iputils-arping iperf3 ethtool \
                python3-venv python3-dev gcc slapd ldap-utils
OVS_CTL := /usr/share/openvswitch/scripts/ovs-ctl
export DEBIAN_FRONTEND := noninteractive

.PHONY: all setup apt venv ovs lab test lint format unit e2e smoke fuzz mutate bench bench-mininet clean

all: test

setup: apt venv

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections; \
	  apt-get update -q; apt-get install -y -q --no-install-recommends $$missing </dev/null; \
	fi

venv: $(VENV)/.installed

.venv/.installed: setup.cfg requirements.txt requirements-dev.txt | apt
	[ -x $(PY) ] || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check 'setuptools<58' wheel
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation ryu==4.34
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $@

# os-ken and what it pulls in, pinned in requirements-os-ken.txt; no Ryu in this one.
.venv-os-ken/.installed: setup.cfg requirements.txt requirements-dev.txt requirements-os-ken.txt | apt
	[ -x $(PY) ] || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-os-ken.txt -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $@

# Start Open vSwitch if it is not running; leave a marker so `make lab` can stop what it started.
ovs: apt
	@if ! ovs-vsctl --timeout=2 show >/dev/null 2>&1; then \
	  $(OVS_CTL) start --system-id=random >/dev/null; touch .ovs-started-by-make; \
	fi

lab: setup ovs
	status=0; $(PY) mininet/lab.py $(if $(LAB_CLI),--cli) $(if $(TOPOLOGY),--topology $(TOPOLOGY)) $(if $(SCENARIO),--scenario $(SCENARIO)) $(if $(filter ldap,$(DIRECTORY)),--ldap) || status=$$?; \
	if [ -f .ovs-started-by-make ]; then $(OVS_CTL) stop >/dev/null; rm -f .ovs-started-by-make; fi; \
	exit $$status

LINT_PATHS := $(wildcard segctl lab tests mininet bench)

lint: venv
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff format $(LINT_PATHS)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)

unit: venv
	$(PY) -m pytest -q tests/unit

e2e: setup ovs
	$(PY) -m pytest -q tests/e2e

# The quick Mininet check of a framework: the access matrix, a quarantine and its release (about 15 s).
smoke: setup ovs
	$(PY) -m pytest -q -p no:cacheprovider tests/e2e/test_smoke.py

# Ryu: every test. os-ken: the unit tests and the smoke test.
test: setup ovs lint
	$(PY) -m pytest -q -p no:cacheprovider $(TESTS)

# A long fuzz run (`make test` runs the same fuzz tests with a few hundred examples each).
fuzz: venv
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/test_fuzz.py --hypothesis-profile=fuzz

# Mutation testing of the core against the unit tests (not part of `make test`: 8 to 14 minutes
# on 2 cores). Prints the score and the survivors; MUTATION.md records the last run.
mutate: venv
	$(VENV)/bin/pip install -q --disable-pip-version-check mutmut==3.8.1
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children 2 || true
	$(VENV)/bin/python -m tests.mutation_report

# Benchmarks (not part of `make test`): rewrites the results block of BENCHMARKS.md.
bench: venv
	$(PY) -m bench

# Connection setup through real Open vSwitch in Mininet (issue 16): OVS NORMAL, simple_switch_13
# and segctl (about 3 minutes, as root; not part of `make bench` nor `make test`). Prints a table;
# BENCH_ARGS=--save also writes bench/results/ and a section of BENCHMARKS.md.
bench-mininet: setup ovs
	$(PY) -m bench.connections $(BENCH_ARGS)

clean:
	rm -rf .venv .venv-os-ken *.egg-info .pytest_cache .hypothesis mutants
