"""The stateful pipeline on real Open vSwitch (its userspace connection tracker), chosen by
`pipeline: auto` from what each switch says it is: the whole access matrix, replies, a server
that tries to open connections back, repeat connections that never reach the controller, and
live streams cut by a revocation and a quarantine and carried on after a controller restart."""

import time
from pathlib import Path

from .conftest import POLICY
from .test_attacks import ACK, FIN_ACK, RST, SYN_ACK, _forge_then_open
from .test_forwarding import assert_policy_enforced
from .test_hardening import connect_times
from .test_quarantine import echoes, wait_for_echoes


def stateful_policy(tmp_path, text: str | None = None) -> str:
    path = tmp_path / "policy-auto.yaml"
    path.write_text("pipeline: auto\n" + (text if text is not None else Path(POLICY).read_text()))
    return str(path)


def wait_described(lab, timeout: float = 10.0) -> None:
    """Every switch answered the description request (pipeline auto needs it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = {e["dpid"] for e in lab.controller.events() if e["kind"] == "switch-described" and e["conntrack"]}
        if len(described) == len(lab.topology.switches):
            return
        time.sleep(0.2)
    raise AssertionError(f"not every switch said it tracks connections: {described}")


def test_the_access_matrix_holds_on_the_stateful_pipeline(make_lab, tmp_path):
    lab = make_lab("leaf-spine", policy=stateful_policy(tmp_path))
    wait_described(lab)
    assert_policy_enforced(lab)
    allows = [e for e in lab.controller.events() if e["kind"] == "allow"]
    assert allows and all((e.get("pipeline") == "stateful") == (e["proto"] != "icmp") for e in allows), allows
    flows = lab.dump_flows()
    assert "ct(commit,zone=94)" in flows and "ct(table=1,zone=94)" in flows and "table=1," in flows, flows


def test_repeat_connections_never_reach_the_controller_and_denials_hold(make_lab, tmp_path):
    lab = make_lab("linear", policy=stateful_policy(tmp_path))
    wait_described(lab)
    assert lab.reaches("app1", "db1", "tcp", 5432)
    before = lab.ipv4_packet_ins()
    times = connect_times(lab, "app1", "db1", 5432, count=1000, gap=0)
    after = lab.ipv4_packet_ins()
    assert None not in times and after - before <= 1, f"{after - before} packet-ins for 1,000 repeat connections"
    assert not [e for e in lab.controller.events() if e["kind"] == "flood"]
    assert not lab.reaches("db1", "app1", "tcp", 5432)  # the reverse direction stays denied
    assert not lab.reaches("app1", "db1", "tcp", 22)


def test_a_server_opens_nothing_back_running_or_after_a_restart(make_lab, tmp_path):
    lab = make_lab("linear", policy=stateful_policy(tmp_path))
    wait_described(lab)
    assert lab.reaches("app1", "db1", "tcp", 5432)
    for phase in ("running", "restarted"):
        if phase == "restarted":
            lab.restart_controller()
            wait_described(lab)
            assert lab.reaches("app1", "db1", "tcp", 5432)
        for flags, port in ((ACK, 22), (FIN_ACK, 80), (RST, 443), (SYN_ACK, 8080)):
            leaked = _forge_then_open(lab, str(tmp_path), "db1", "app1", 5432, port, flags)
            assert leaked == 0, f"{phase}: after a forged {flags:#x}, db1's SYN reached app1:{port}"
    assert not lab.reaches("db1", "app1", "tcp", 22)


def test_revocation_and_quarantine_cut_live_streams_and_a_restart_does_not(make_lab, tmp_path):
    text = Path(POLICY).read_text()
    policy = stateful_policy(tmp_path, text)
    lab = make_lab("linear", policy=policy)
    wait_described(lab)
    revoked, quarantined = tmp_path / "web1.log", tmp_path / "app1.log"
    streams = [lab.stream("web1", "app1", 8080, str(revoked)), lab.stream("app1", "db1", 5432, str(quarantined))]
    try:
        assert wait_for_echoes(revoked, 0) and wait_for_echoes(quarantined, 0)
        restarted = time.time()
        lab.restart_controller()  # the switches wipe their entries; their trackers keep the connections
        wait_described(lab)
        assert wait_for_echoes(revoked, restarted + 0.5, timeout=20), "a live stream did not survive a restart"
        assert wait_for_echoes(quarantined, restarted + 0.5, timeout=20)
        start = text.index("  - name: web-to-app")
        with open(policy, "w") as handle:
            handle.write("pipeline: auto\n" + text[:start] + text[text.index("  - name: app-to-db") :])
        before = time.time()
        result = lab.controller.cli("reload")
        assert result.returncode == 0 and "revoked" in result.stdout, result.stdout + result.stderr
        time.sleep(2)
        assert max(echoes(revoked)) < before + 1.0, "the revoked stream kept flowing"
        assert max(echoes(quarantined)) > before + 1.5, "the stream of a kept rule was hurt"
        before = time.time()
        result = lab.controller.cli("quarantine", "app1", "--reason", "test")
        assert result.returncode == 0, result.stderr
        time.sleep(2)
        assert max(echoes(quarantined)) < before + 1.0, "the quarantined host's stream kept flowing"
    finally:
        for stream in streams:
            stream.kill()
    assert not lab.reaches("web1", "app1", "tcp", 8080)
