"""Own the switch (issue 9): nothing on a switch that segctl did not put there. Real Open vSwitch
flow tables, edited by hand with ovs-ofctl as an engineer (or an intruder with switch access)
would, and real traffic checked at its destination."""

import json
import subprocess
import time

from lab.net import Lab

AUDIT = ["--audit-interval", "2"]
FOREIGN = "priority=65000,actions=NORMAL"  # an earlier controller's (or a hand edit's) leftover


def ofctl(*args: str) -> str:
    return subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args], capture_output=True, text=True, check=True).stdout


def entries_with(lab: Lab, needle: str) -> dict[str, list[str]]:
    """Each switch's entries whose dump line holds `needle`."""
    return {
        name: [line for line in ofctl("dump-flows", name).splitlines() if needle in line]
        for name in lab.topology.switches
    }


def wait_until(condition, timeout: float) -> float | None:
    """Seconds until `condition()` held, None if it never did within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def drift_events(lab: Lab) -> list[dict]:
    return [e for e in lab.controller.events() if e["kind"] == "drift"]


def test_a_foreign_entry_written_before_the_controller_connects_is_wiped(make_lab):
    lab = make_lab("linear")
    assert not lab.reaches("app1", "web1", "tcp", 8080)  # denied: no rule lets app reach web
    lab.controller.kill()
    for name in lab.topology.switches:
        ofctl("add-flow", name, FOREIGN)
    # The leftover forwards around every policy while nothing else is there to stop it.
    assert lab.reaches("app1", "web1", "tcp", 8080), "the foreign NORMAL entry did not forward: the test sees nothing"
    lab.controller.start()
    lab.wait_for_fabric(60)
    assert entries_with(lab, "priority=65000") == {name: [] for name in lab.topology.switches}
    assert not lab.reaches("app1", "web1", "tcp", 8080)
    assert lab.reaches("app1", "db1", "tcp", 5432)  # what policy allows still flows


def test_the_audit_leaves_segctls_entries_alone_and_removes_one_added_while_it_runs(make_lab):
    lab = make_lab("linear", controller_args=AUDIT)
    assert lab.reaches("web1", "app1", "tcp", 8080) and lab.reaches("app1", "db1", "tcp", 5432)
    assert lab.outcomes([("mon1", "web1", "icmp", 0)]) == ["allow"]
    time.sleep(5)  # two audits of every switch, with live connections on them
    found = sorted({f"{e['action']}: {e['entry']}" for e in drift_events(lab)})
    assert found == [], "the audit found drift in what segctl itself wrote:\n" + "\n".join(found)

    ofctl("add-flow", "s2", FOREIGN)
    gone = wait_until(lambda: not entries_with(lab, "priority=65000")["s2"], timeout=10)
    assert gone is not None and gone < 2 + 1.5, f"the foreign entry stayed {gone} s"
    assert not lab.reaches("app1", "web1", "tcp", 8080)
    (event,) = drift_events(lab)
    assert event["dpid"] == 2 and event["action"] == "deleted: not written by segctl"
    assert "priority=65000" in event["entry"]
    audit = json.loads(lab.controller.cli("audit", "--json").stdout)
    assert audit["drift_findings"] == 1 and {s["dpid"] for s in audit["switches"]} == {1, 2, 3}
    assert json.loads(lab.controller.cli("health", "--json").stdout)["drift_findings"] == 1
    printed = lab.controller.cli("audit").stdout
    assert "deleted: not written by segctl" in printed and "FINDINGS" in printed


def test_a_quarantine_drop_deleted_by_hand_is_back_within_one_interval(make_lab):
    lab = make_lab("linear", controller_args=AUDIT)
    mac = lab.directory.find("app1").mac
    assert lab.controller.cli("quarantine", "app1", "--reason", "test").returncode == 0
    assert entries_with(lab, f"dl_src={mac}")["s2"], "no quarantine drop to delete"
    ofctl("--strict", "del-flows", "s2", f"priority=40000,dl_src={mac}")
    assert not entries_with(lab, f"dl_src={mac}")["s2"]
    back = wait_until(lambda: entries_with(lab, f"dl_src={mac}")["s2"], timeout=10)
    assert back is not None and back < 2 + 1.5, f"the quarantine drop came back after {back} s"
    assert not lab.reaches("app1", "db1", "tcp", 5432)
    assert [e["action"] for e in drift_events(lab)] == ["reinstalled: missing"]
