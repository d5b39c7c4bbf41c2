"""`segctl map` and `segctl suggest`: the real command against the real API served over HTTP,
and offline from a real flow store file, read read-only."""

import gc
import json
import os
import pathlib
import subprocess
import sys
import threading
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

from .flowedges import DAY, RECENT, flow_edge, recorded_store

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


def older(port, days):
    """web1 -> app1 on `port`, 4 flows `days` days ago."""
    return flow_edge(
        "web1",
        "app1",
        port,
        flows=4,
        src_labels=WEB,
        dst_labels=APP,
        first=RECENT - days * DAY,
        last=RECENT - days * DAY,
    )


# Outside the windows of 24h and 2d; inside 2w. A running controller keeps 7 days: never 3 weeks.
OLD, ANCIENT = older(9090, 3), older(9091, 21)


def segctl(*args):
    return subprocess.run([sys.executable, "-m", "segctl", *args], capture_output=True, text=True, cwd=ROOT)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """The real API on a local port, its flow store holding EDGES, OLD and ANCIENT; yields the CLI's --api options."""
    store = recorded_store(str(tmp_path / "flows.sqlite"), [*EDGES, OLD, ANCIENT])
    sources = Sources(f"{ROOT}/policies/directory.yaml", f"{ROOT}/policies/policy.yaml")
    runtime = Runtime(sources, EventLog(), None, store=store)
    server = make_server("127.0.0.1", 0, Api(runtime, {TOKEN: "cli"}), handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    (tmp_path / "token").write_text(TOKEN + "\n")
    yield ["--api", f"http://127.0.0.1:{server.server_port}", "--api-token-file", str(tmp_path / "token")]
    server.shutdown()
    thread.join()


def test_map_prints_a_table_json_and_dot(served):
    options = served
    table = segctl("map", *options, "--since", "24h")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["FROM", "TO", "SERVICE"]
    assert "tcp/9090" not in table.stdout  # OLD: before the window
    assert any(line.split()[:3] == ["role=web", "role=app", "tcp/8080"] and line.endswith("allow") for line in lines)
    assert any(line.split()[:3] == [ROGUE, "role=app", "tcp/80"] and line.endswith("deny") for line in lines)
    body = json.loads(segctl("map", *options, "--json", "--by", "role,env", "--verdict", "denied").stdout)
    assert body["by"] == ["role", "env"] and {e["observed"]["denied"] for e in body["edges"]} == {1}
    everything = json.loads(segctl("map", *options, "--json").stdout)  # no window: OLD in; ANCIENT pruned
    assert {e["port"] for e in everything["edges"]} == {8080, 8081, 22, 80, 9090}
    dot = segctl("map", *options, "--dot").stdout
    assert dot.startswith("digraph segctl_map {") and dot.rstrip().endswith("}") and "->" in dot


def test_suggest_writes_the_draft_on_stdout_and_the_coverage_on_stderr(served):
    options = served
    result = segctl("suggest", *options, "--since", "2d", "--min-flows", "2", "--exclude", "role=scanner")
    assert result.returncode == 0, result.stderr
    policy = parse_policy([(load_yaml_text(result.stdout, "draft.yaml"), "draft.yaml")])
    assert [(r.src_text, r.dst_text, r.ports) for r in policy.rules] == [("web", "app", ((8080, 8080),))]
    assert "below --min-flows" in result.stdout  # OLD (9090, 4 flows) is before the window: no rule for it
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


@pytest.fixture
def store(tmp_path):
    """A real flow store file holding EDGES, OLD and ANCIENT (as import-events leaves one), closed."""
    path = tmp_path / "flows.sqlite"
    recorded_store(str(path), [*EDGES, OLD, ANCIENT])
    # An sqlite3 connection sits in a reference cycle (its statement cache): collected, the
    # writer's connection closes and folds its WAL into the file, as at the end of an import.
    gc.collect()
    assert files_of(tmp_path).keys() == {"flows.sqlite"}
    return str(path)


def files_of(folder):
    return {path.name: path.read_bytes() for path in sorted(pathlib.Path(folder).iterdir())}


def test_offline_map_reads_the_store_read_only_with_the_files_given(store, capsys):
    directory, policy = f"{ROOT}/policies/directory.yaml", f"{ROOT}/policies/policy.yaml"
    before = files_of(os.path.dirname(store))
    argv = ["map", "--store", store, "--directory", directory, "--policy", policy, "--since", "2w", "--json"]
    assert cli.main(argv) == 0
    body = json.loads(capsys.readouterr().out)
    statuses = {e["port"]: e["policy"]["status"] for e in body["edges"]}
    # The last 2 weeks: OLD in, ANCIENT (3 weeks) out.
    assert statuses == {8080: "allow", 8081: "deny", 22: "deny", 80: "deny", 9090: "deny"}
    assert cli.main(["map", "--store", store]) == 0  # no policy: the map without a status column's values
    out = capsys.readouterr().out
    assert "POLICY NOW" in out and "tcp/9091" in out  # no window: all of it
    # Read-only: not a byte of the store changed, nothing written to its log (SQLite's readers of
    # a WAL file may leave an empty one, and the shared-memory index, beside it).
    after = files_of(os.path.dirname(store))
    assert after["flows.sqlite"] == before["flows.sqlite"] and after.get("flows.sqlite-wal", b"") == b""


def test_offline_suggest_and_its_errors(store, capsys, tmp_path):
    assert cli.main(["suggest", "--store", store]) == 0
    out = capsys.readouterr()
    assert '"web-to-app-tcp"' in out.out and out.err.startswith("draft: 2 group(s), 1 rule(s)")
    missing = str(tmp_path / "nowhere.sqlite")
    assert cli.main(["suggest", "--store", missing]) == 1
    assert capsys.readouterr().err == (
        f"segctl: {missing}: no flow store here; `segctl run` records one (--retention), "
        "`segctl import-events` fills one\n"
    )
    assert not os.path.exists(missing)
    garbage = tmp_path / "events.jsonl"
    garbage.write_bytes(b'{"kind": "allow"}\n' * 300)
    assert cli.main(["map", "--store", str(garbage)]) == 1
    assert capsys.readouterr().err.startswith(f"segctl: {garbage}: not a readable flow store (file is not a database)")
    assert cli.main(["suggest", "--store", store, "--directory", "/nonexistent.yaml"]) == 1
    assert "/nonexistent.yaml:1: cannot read" in capsys.readouterr().err
    assert cli.main(["suggest", "--store", store, "--api", "http://x"]) == 1
    assert capsys.readouterr().err == "segctl: give --api or --store, not both\n"
