"""Attacks on what issue 10 added (per-group modes, the flow store and what reads it): each
test names what an attacker does and asserts what must hold."""

from __future__ import annotations

import shutil
import threading

import yaml

from segctl.config import Sources
from segctl.core.events import EventLog
from segctl.runtime import Runtime

from .flowedges import SHIPPED_EDGES, recorded_store
from .test_api import ROOT


def _in_another_thread(function):
    """run_blocking as Ryu's tpool does it: the function runs in an OS thread of its own."""
    result: dict = {}

    def target():
        try:
            result["value"] = function()
        except BaseException as exc:  # handed back to the caller, as tpool does
            result["error"] = exc

    worker = threading.Thread(target=target)
    worker.start()
    worker.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_a_simulated_drafts_yaml_is_parsed_off_the_event_loop(tmp_path, monkeypatch):
    """An API client posts a 1 MiB draft to /v1/policy/simulate: parsing it takes seconds, and
    on the event loop's thread that stalls every switch (packet-ins, echoes) meanwhile."""
    for name in ("directory.yaml", "policy.yaml"):
        shutil.copy(f"{ROOT}/policies/{name}", tmp_path / name)
    store = recorded_store(str(tmp_path / "flows.sqlite"), SHIPPED_EDGES)
    sources = Sources(str(tmp_path / "directory.yaml"), str(tmp_path / "policy.yaml"))
    runtime = Runtime(sources, EventLog(), None, run_blocking=_in_another_thread, store=store)
    parsed_in: list[threading.Thread] = []
    real = yaml.SafeLoader.get_single_node

    def spy(loader):
        parsed_in.append(threading.current_thread())
        return real(loader)

    monkeypatch.setattr(yaml.SafeLoader, "get_single_node", spy)
    report = runtime.simulate("rules: []\n", 3600.0, 5)
    assert report["breaks"] is True
    assert parsed_in and threading.main_thread() not in parsed_in
