"""Quarantine, restart and reload, through the CLI and REST API, with live TCP streams."""

import shutil
import subprocess
import time

from .conftest import DIRECTORY, POLICY


def echoes(path) -> list[float]:
    try:
        with open(path) as handle:
            return [float(line) for line in handle if line[0].isdigit()]
    except FileNotFoundError:
        return []


def wait_for_echoes(path, after: float, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(t > after for t in echoes(path)):
            return True
        time.sleep(0.1)
    return False


def flows_by_switch(lab, needle: str) -> dict[str, list[str]]:
    """Each switch's entries that contain `needle` (ovs-ofctl must answer, or the test fails)."""
    found = {}
    for name in lab.topology.switches:
        out = subprocess.run(
            ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", name], capture_output=True, text=True, check=True
        )
        found[name] = [line for line in out.stdout.splitlines() if needle in line]
    return found


def test_quarantine_cuts_an_open_stream_within_a_second_and_release_restores_it(make_lab, tmp_path):
    lab = make_lab("linear")
    victim, bystander = tmp_path / "web1.log", tmp_path / "app1.log"
    streams = [lab.stream("web1", "app1", 8080, str(victim)), lab.stream("app1", "db1", 5432, str(bystander))]
    try:
        assert wait_for_echoes(victim, 0) and wait_for_echoes(bystander, 0)
        before = time.time()
        result = lab.controller.cli("quarantine", "web1", "--reason", "EDR: C2 beaconing")
        after = time.time()
        assert result.returncode == 0, result.stderr
        assert "confirmed by switches [1, 2, 3]" in result.stdout
        time.sleep(2)
        assert max(echoes(victim)) < before + 1.0, "the quarantined stream kept flowing"
        assert max(echoes(bystander)) > after + 1.5, "another host's stream was hurt"
        assert not lab.reaches("web1", "app1", "tcp", 8080)
        assert not lab.reaches("jump1", "web1", "tcp", 22)  # nothing to it either
        for needle in ("priority=40000,dl_src=02:00:00:00:01:01", "priority=40000,dl_dst=02:00:00:00:01:01"):
            by_switch = flows_by_switch(lab, needle)
            assert all(len(lines) == 1 for lines in by_switch.values()), f"not on every switch: {by_switch}"
        hosts = lab.controller.cli("hosts", "web1")
        assert "quarantined" in hosts.stdout
        released_at = time.time()
        assert lab.controller.cli("release", "web1").returncode == 0
        assert lab.reaches("web1", "app1", "tcp", 8080)
        assert wait_for_echoes(victim, released_at, timeout=20), "the stream did not resume after release"
    finally:
        for stream in streams:
            stream.kill()
    events = lab.controller.cli("events", "--json", "--limit", "500").stdout
    assert '"by": "local"' in events and "EDR: C2 beaconing" in events


def test_quarantine_survives_a_controller_restart(make_lab):
    lab = make_lab("leaf-spine")
    assert lab.reaches("web1", "app1", "tcp", 8080)
    assert lab.controller.cli("quarantine", "02:00:00:00:01:01", "--reason", "lost laptop").returncode == 0
    lab.restart_controller()
    by_switch = flows_by_switch(lab, "priority=40000,dl_src=02:00:00:00:01:01")
    assert len(by_switch) == 5 and all(len(lines) == 1 for lines in by_switch.values()), by_switch
    assert not lab.reaches("web1", "app1", "tcp", 8080)
    assert lab.reaches("web2", "app1", "tcp", 8080)
    listed = lab.controller.cli("hosts", "web1")
    assert "quarantined" in listed.stdout, listed.stdout + listed.stderr


def test_reload_revokes_exactly_the_connections_a_removed_rule_allowed(make_lab, tmp_path):
    policy = tmp_path / "policy.yaml"
    shutil.copy(POLICY, policy)
    lab = make_lab("linear", directory=DIRECTORY, policy=str(policy))
    removed, kept = tmp_path / "web1.log", tmp_path / "app1.log"
    streams = [lab.stream("web1", "app1", 8080, str(removed)), lab.stream("app1", "db1", 5432, str(kept))]
    try:
        assert wait_for_echoes(removed, 0) and wait_for_echoes(kept, 0)
        text = policy.read_text()
        start = text.index("  - name: web-to-app")
        policy.write_text(text[:start] + text[text.index("  - name: app-to-db") :])
        before = time.time()
        result = lab.controller.cli("reload")
        assert result.returncode == 0 and "1 connection(s) revoked" in result.stdout, result.stdout + result.stderr
        time.sleep(2)
        assert max(echoes(removed)) < before + 1.0
        assert max(echoes(kept)) > before + 1.5
        assert not lab.reaches("web1", "app1", "tcp", 8080)
    finally:
        for stream in streams:
            stream.kill()


def test_a_broken_reload_answers_400_and_changes_nothing(make_lab, tmp_path):
    policy = tmp_path / "policy.yaml"
    shutil.copy(POLICY, policy)
    lab = make_lab("single", directory=DIRECTORY, policy=str(policy))
    assert lab.reaches("web1", "app1", "tcp", 8080)
    policy.write_text(policy.read_text().replace("proto: tcp\n    ports: [8080]", "proto: tcp\n    ports: [80800]"))
    result = lab.controller.cli("reload")
    assert result.returncode == 1
    assert f"{policy}:" in result.stderr and "out of range" in result.stderr
    assert lab.reaches("web1", "app1", "tcp", 8080)
    assert not lab.reaches("app1", "web1", "tcp", 8080)
    reloads = [e for e in lab.controller.events() if e["kind"] == "reload"]
    assert [e.get("ok") for e in reloads] == [False] and "out of range" in reloads[0]["errors"][0]
