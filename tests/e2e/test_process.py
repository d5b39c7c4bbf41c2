"""`segctl run` as a process: start-up refusals, signals, and the live HTTP API under fuzz."""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from .conftest import DIRECTORY, POLICY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(tmp_path, *extra, policy=POLICY):
    state = tmp_path / "state"
    args = [
        sys.executable,
        "-m",
        "segctl",
        "run",
        "--directory",
        DIRECTORY,
        "--policy",
        str(policy),
        "--of-port",
        str(free_port()),
        "--of-host",
        "127.0.0.1",
        "--state-dir",
        str(state),
        *extra,
    ]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_listening(process, marker="listening for OpenFlow", timeout=20.0) -> list[str]:
    """Lines the controller logged until `marker` (the process is killed if it never comes)."""
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if marker in line:
                return lines
    finally:
        timer.cancel()
    raise AssertionError("controller did not start:\n" + "".join(lines))


def stop(process) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(10)


def test_refuses_a_non_loopback_api_without_a_token(tmp_path):
    process = run(tmp_path, "--api-host", "0.0.0.0", "--api-port", str(free_port()))
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 2 and "without --api-token-file" in out


def test_corrupt_state_refuses_to_start_unless_told_to_discard_it(tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.msgpack").write_bytes(b"\x85\xa7version\x01")
    process = run(tmp_path, "--api-port", "0")
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 1
    assert "state.msgpack: corrupt or truncated" in out and "--discard-state" in out
    process = run(tmp_path, "--api-port", "0", "--discard-state")
    lines = wait_listening(process)
    assert any("set aside" in line for line in lines)
    assert stop(process) == 0
    assert [n for n in os.listdir(tmp_path / "state") if n.startswith("state.msgpack.discarded-")]


def test_sighup_reloads_and_sigterm_exits_cleanly(tmp_path):
    policy = tmp_path / "policy.yaml"
    shutil.copy(POLICY, policy)
    process = run(tmp_path, "--api-port", "0", policy=policy)
    wait_listening(process)
    policy.write_text(policy.read_text().replace("mode: enforce", "mode: monitor"))
    process.send_signal(signal.SIGHUP)
    events = tmp_path / "state" / "events.jsonl"
    deadline = time.monotonic() + 10
    reloads = []
    while time.monotonic() < deadline and not reloads:
        reloads = [json.loads(line) for line in events.read_text().splitlines() if '"reload"' in line]
        time.sleep(0.1)
    assert reloads and reloads[0]["ok"] and reloads[0]["mode"] == "monitor" and reloads[0]["by"] == "SIGHUP"
    assert stop(process) == 0


def test_the_live_api_survives_random_requests(tmp_path):
    port = free_port()
    process = run(tmp_path, "--api-port", str(port))
    try:
        wait_listening(process, marker="REST API on")
        token = (tmp_path / "state" / "api-token").read_text().strip().rpartition(":")[2]
        rng = random.Random(4711)
        paths = [
            "/v1/health",
            "/v1/hosts",
            "/v1/hosts/web1",
            "/v1/hosts/%00",
            "/v1/quarantine",
            "/v1/flows",
            "/v1/events?limit=-1",
            "/v1/events?limit=99999999999999999999",
            "/v1/policy/reload",
            "/v1/quarantine/web1",
            "/v1/openapi.json",
            "/v1/../etc/passwd",
            "/v1/hosts/" + "a" * 5000,
        ]
        bodies = [
            None,
            b"",
            b"{",
            b"[]",
            b'{"host": "web1", "reason": "fuzz"}',
            b'{"host": null}',
            b'{"host": "web1", "reason": "' + b"x" * 70000 + b'"}',
            bytes(rng.randrange(256) for _ in range(64)),
            b'{"host": {"a": 1}, "reason": [1]}',
            b'{"host": "02:00:00:00:99:99", "reason": "r"}',
        ]
        statuses = []
        for _ in range(300):
            method = rng.choice(["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"])
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{rng.choice(paths)}",
                method=method,
                data=rng.choice(bodies) if method in ("POST", "PUT", "PATCH") else None,
            )
            if rng.random() < 0.8:
                request.add_header("Authorization", f"Bearer {token if rng.random() < 0.8 else 'nope'}")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    statuses.append(response.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        assert statuses and max(statuses) < 500, sorted(set(statuses))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=5) as response:
            assert json.loads(response.read())["status"] == "ok"
        assert process.poll() is None
    finally:
        stop(process)
