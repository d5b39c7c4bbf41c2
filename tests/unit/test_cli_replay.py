"""`segctl replay`, the real command: against a real API server (a thread serving the WSGI app
over HTTP), and offline from a store."""

from __future__ import annotations

import json
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
from segctl.runtime import Runtime

from .flowedges import SHIPPED_EDGES
from .test_api import ROOT
from .test_api_whatif import DRAFT

TOKEN = "0123456789abcdef-cli-replay"
SHIPPED_POLICY = f"{ROOT}/policies/policy.yaml"


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def api_url():
    runtime = Runtime(Sources(f"{ROOT}/policies/directory.yaml", SHIPPED_POLICY), EventLog(), None)
    runtime.flow_edges = lambda since: SHIPPED_EDGES  # type: ignore[attr-defined]
    server = make_server("127.0.0.1", 0, Api(runtime, {TOKEN: "ci"}), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def segctl(*args, token_file=None):
    command = [sys.executable, "-m", "segctl", "replay", *args]
    if token_file is not None:
        command += ["--api-token-file", str(token_file)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.fixture
def token(tmp_path):
    path = tmp_path / "token"
    path.write_text(f"ci:{TOKEN}\n")
    return path


def test_a_draft_that_breaks_recorded_flows_exits_3_and_says_what_breaks(api_url, token, tmp_path):
    (tmp_path / "draft.yaml").write_text(DRAFT)
    result = segctl("--policy", str(tmp_path / "draft.yaml"), "--api", api_url, "--since", "2h", token_file=token)
    assert result.returncode == 3, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("replayed 70 flow(s) between 4 host pair(s) recorded in the last 7200 s")
    assert "  admin-ssh: 3 flow(s), 1 host pair(s)" in lines
    assert "    jump1 -> db1 tcp/22: 3 flow(s)" in lines
    assert lines[-1] == "the draft would deny 3 flow(s) forwarded now (exit status 3)"


def test_a_draft_that_breaks_nothing_exits_0_and_json_is_the_api_answer(api_url, token):
    result = segctl("--policy", SHIPPED_POLICY, "--api", api_url, "--json", "--top", "1", token_file=token)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["newly_denied"]["flows"] == 0 and body["unchanged"]["flows"] == 70
    assert len(body["unchanged"]["top"]) == 1


def test_a_draft_with_problems_exits_1_with_file_line_before_anything_is_sent(tmp_path, token):
    (tmp_path / "draft.yaml").write_text("rules:\n  - {name: r, from: nowhere, to: any}\n")
    result = segctl("--policy", str(tmp_path / "draft.yaml"), "--api", "http://127.0.0.1:9", token_file=token)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{tmp_path}/draft.yaml:2: rule r from: unknown group 'nowhere'"]


def test_usage_errors_exit_2(tmp_path, token, api_url):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "a.yaml").write_text("rules: []\n")
    folder = segctl("--policy", str(tmp_path / "folder"), "--api", api_url, token_file=token)
    assert folder.returncode == 2 and "is a folder; the API takes one policy file" in folder.stderr
    both = segctl("--policy", SHIPPED_POLICY, "--api", api_url, "--store", "x.db")
    assert both.returncode == 2 and "not both" in both.stderr
    since = segctl("--policy", SHIPPED_POLICY, "--since", "11y")
    assert since.returncode == 2 and "--since" in since.stderr


def test_an_unreachable_api_or_a_wrong_token_exits_1(tmp_path, api_url):
    (tmp_path / "wrong").write_text("x:wrong-token-0123456789\n")
    wrong = segctl("--policy", SHIPPED_POLICY, "--api", api_url, token_file=tmp_path / "wrong")
    assert wrong.returncode == 1 and "wrong bearer token" in wrong.stderr


def fake_store(monkeypatch, edges, error=None):
    """segctl.flowstore as the store helper defines it: FlowStore(path, readonly=...).edges()."""
    module = types.ModuleType("segctl.flowstore")

    class StoreError(Exception):
        pass

    class FlowStore:
        def __init__(self, path, retention=None, readonly=False):
            assert readonly
            if error:
                raise StoreError(error)

        def edges(self, since=None, now=None):
            return edges

    module.FlowStore, module.StoreError = FlowStore, StoreError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "segctl.flowstore", module)


def test_offline_the_recorded_verdicts_stand_for_the_running_policy(monkeypatch, capsys, tmp_path):
    fake_store(monkeypatch, SHIPPED_EDGES)
    (tmp_path / "draft.yaml").write_text(DRAFT)
    directory = f"{ROOT}/policies/directory.yaml"
    assert (
        cli.main(["replay", "--policy", str(tmp_path / "draft.yaml"), "--store", "f.db", "--directory", directory]) == 3
    )
    assert "  admin-ssh: 3 flow(s), 1 host pair(s)" in capsys.readouterr().out.splitlines()
    assert cli.main(["replay", "--policy", SHIPPED_POLICY, "--store", "f.db", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unchanged"]["flows"] == 70


def test_offline_a_store_that_cannot_be_read_exits_1_naming_it(monkeypatch, capsys):
    fake_store(monkeypatch, [], error="not a segctl flow store")
    assert cli.main(["replay", "--policy", SHIPPED_POLICY, "--store", "f.db"]) == 1
    assert "--store f.db: not a segctl flow store" in capsys.readouterr().err
