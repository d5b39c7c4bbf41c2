"""Mininet end-to-end fixtures: real OVS switches (userspace datapath), a real segctl process,
real traffic. They need root and Open vSwitch; `make test` provides both."""

from __future__ import annotations

import itertools
import os

import pytest

from lab.net import Lab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIRECTORY = os.path.join(ROOT, "policies", "directory.yaml")
POLICY = os.path.join(ROOT, "policies", "policy.yaml")
_ports = itertools.count(6710)


def topology(name: str) -> str:
    return os.path.join(ROOT, "topologies", f"{name}.yaml")


@pytest.fixture(scope="session", autouse=True)
def _need_root():
    if os.geteuid() != 0:
        pytest.fail("the Mininet end-to-end tests need root (run `make test` as root)")


@pytest.fixture
def make_lab(tmp_path):
    """Start a lab on a topology with any directory and policy; stopped after the test."""
    labs = []

    def start(topo: str, directory: str = DIRECTORY, policy: str = POLICY, **kwargs) -> Lab:
        lab = Lab(
            topology(topo),
            directory,
            policy,
            of_port=next(_ports),
            state_dir=str(tmp_path / f"state{len(labs)}"),
            addressing=DIRECTORY,
            **kwargs,
        )
        labs.append(lab)
        lab.start()
        return lab

    yield start
    for lab in labs:
        lab.stop()


@pytest.fixture(scope="module")
def module_lab(request, tmp_path_factory):
    """One lab per test module, on the topology the module names in LAB_TOPOLOGY (or per
    parameter)."""
    topo = getattr(request, "param", None) or request.module.LAB_TOPOLOGY
    lab = Lab(
        topology(topo),
        DIRECTORY,
        POLICY,
        of_port=next(_ports),
        state_dir=str(tmp_path_factory.mktemp(f"lab-{topo}")),
    )
    lab.start()
    yield lab
    lab.stop()
