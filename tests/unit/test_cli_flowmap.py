"""`segctl map` and `segctl suggest`: the real command against the real API served over HTTP,
and offline from a flow store file (a stand-in for segctl.flowstore until it lands)."""

import json
import os
import subprocess
import sys
import threading
import types
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from segctl import cli
from segctl.api import Api
from segctl.config import Sources
from segctl.core.events import EventLog
from segctl.core.flowlog import DENIED
from segctl.core.policy import parse_policy
from segctl.core.yamlsrc import load_yaml_text
from segctl.runtime import Runtime

from .flowedges import flow_edge

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKEN = "token-for-the-map-tests"
ROGUE = "02:00:00:00:99:99"
WEB, APP = {"role": "web", "env": "prod"}, {"role": "app", "env": "prod"}
EDGES = [
    flow_edge("web1", "app1", 8080, flows=5, src_labels=WEB, dst_labels=APP),
    flow_edge("web1", "app1", 8081, flows=1, src_labels=WEB, dst_labels=APP),
    flow_edge("app1", "web1", 22, verdict=DENIED, src_labels=APP, dst_labels=WEB),
    flow_edge(ROGUE, "app1", 80, verdict=DENIED, dst_labels=APP),
]


def segctl(*args):
    return subprocess.run([sys.executable, "-m", "segctl", *args], capture_output=True, text=True, cwd=ROOT)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """The real API on a local port, its recorded flows EDGES; yields the CLI's --api options."""
    runtime = Runtime(Sources(f"{ROOT}/policies/directory.yaml", f"{ROOT}/policies/policy.yaml"), EventLog(), None)
    asked = []
    runtime.flow_edges = lambda since: asked.append(since) or list(EDGES)
    server = make_server("127.0.0.1", 0, Api(runtime, {TOKEN: "cli"}), handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    (tmp_path / "token").write_text(TOKEN + "\n")
    yield ["--api", f"http://127.0.0.1:{server.server_port}", "--api-token-file", str(tmp_path / "token")], asked
    server.shutdown()
    thread.join()


def test_map_prints_a_table_json_and_dot(served):
    options, asked = served
    table = segctl("map", *options, "--since", "24h")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["FROM", "TO", "SERVICE"] and asked == [86400.0]
    assert any(line.split()[:3] == ["role=web", "role=app", "tcp/8080"] and line.endswith("allow") for line in lines)
    assert any(line.split()[:3] == [ROGUE, "role=app", "tcp/80"] and line.endswith("deny") for line in lines)
    body = json.loads(segctl("map", *options, "--json", "--by", "role,env", "--verdict", "denied").stdout)
    assert body["by"] == ["role", "env"] and {e["observed"]["denied"] for e in body["edges"]} == {1}
    dot = segctl("map", *options, "--dot").stdout
    assert dot.startswith("digraph segctl_map {") and dot.rstrip().endswith("}") and "->" in dot


def test_suggest_writes_the_draft_on_stdout_and_the_coverage_on_stderr(served):
    options, asked = served
    result = segctl("suggest", *options, "--since", "7d", "--min-flows", "2", "--exclude", "role=scanner")
    assert result.returncode == 0, result.stderr
    policy = parse_policy([(load_yaml_text(result.stdout, "draft.yaml"), "draft.yaml")])
    assert [(r.src_text, r.dst_text, r.ports) for r in policy.rules] == [("web", "app", ((8080, 8080),))]
    assert "below --min-flows" in result.stdout and asked == [7 * 86400.0]
    assert (
        result.stderr == "draft: 2 group(s), 1 rule(s); allows 5 of 8 connections observed (62.5%), 5 of 6 forwarded\n"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["map", "--since", "7x"], "argument --since: '7x' is not a duration like 90s, 30m, 24h, 7d or 2w"),
        (["map", "--by", ","], "argument --by: ',' is not a list of label keys like role or role,app"),
        (["suggest", "--exclude", "scanner"], "argument --exclude: 'scanner' is not a selector like role=scanner"),
        (["suggest", "--min-flows", "0"], "argument --min-flows: '0' is not a whole number of 1 or more"),
        (["map", "--verdict", "maybe"], "argument --verdict: invalid choice: 'maybe'"),
    ],
)
def test_bad_options_are_refused_before_anything_is_asked(args, message):
    result = segctl(*args)
    assert result.returncode == 2 and message in result.stderr


class FakeStore:
    """segctl.flowstore.FlowStore as the offline commands use it."""

    opened = []

    def __init__(self, path, retention=None, readonly=False):
        if not os.path.exists(path):
            raise FakeStoreError(f"no flow store at {path}")
        FakeStore.opened.append((path, readonly))

    def edges(self, since=None, now=None):
        FakeStore.opened.append(("since", since))
        return list(EDGES)


class FakeStoreError(Exception):
    pass


@pytest.fixture
def store(monkeypatch, tmp_path):
    module = types.ModuleType("segctl.flowstore")
    module.FlowStore, module.StoreError = FakeStore, FakeStoreError
    monkeypatch.setitem(sys.modules, "segctl.flowstore", module)
    FakeStore.opened = []
    path = tmp_path / "flows.db"
    path.write_text("")
    return str(path)


def test_offline_map_reads_the_store_read_only_with_the_files_given(store, capsys):
    directory, policy = f"{ROOT}/policies/directory.yaml", f"{ROOT}/policies/policy.yaml"
    argv = ["map", "--store", store, "--directory", directory, "--policy", policy, "--since", "2w", "--json"]
    assert cli.main(argv) == 0
    body = json.loads(capsys.readouterr().out)
    assert FakeStore.opened == [(store, True), ("since", 14 * 86400.0)]
    statuses = {e["port"]: e["policy"]["status"] for e in body["edges"]}
    assert statuses == {8080: "allow", 8081: "deny", 22: "deny", 80: "deny"}
    assert cli.main(["map", "--store", store]) == 0  # no policy: the map without a status column's values
    assert "POLICY NOW" in capsys.readouterr().out


def test_offline_suggest_and_its_errors(store, capsys):
    assert cli.main(["suggest", "--store", store]) == 0
    out = capsys.readouterr()
    assert '"web-to-app-tcp"' in out.out and out.err.startswith("draft: 2 group(s), 1 rule(s)")
    assert cli.main(["suggest", "--store", store + ".missing"]) == 1
    assert capsys.readouterr().err == f"segctl: {store}.missing: no flow store at {store}.missing\n"
    assert cli.main(["suggest", "--store", store, "--directory", "/nonexistent.yaml"]) == 1
    assert "/nonexistent.yaml:1: cannot read" in capsys.readouterr().err
    assert cli.main(["suggest", "--store", store, "--api", "http://x"]) == 1
    assert capsys.readouterr().err == "segctl: give --api or --store, not both\n"
