"""`segctl replay`, the real command: against a real API server (a thread serving the WSGI app
over HTTP) whose runtime reads a real flow store, and offline from a real store file."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from segctl import cli
from segctl.api import Api
from segctl.config import Sources
from segctl.core.events import EventLog
from segctl.runtime import Runtime

from .flowedges import DAY, HOUR, RECENT, SHIPPED_EDGES, edge, recorded_store
from .test_api import ROOT
from .test_api_whatif import DRAFT

TOKEN = "0123456789abcdef-cli-replay"
SHIPPED_POLICY = f"{ROOT}/policies/policy.yaml"


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


# jump1 -> db1 on 22, three hours before the recent flows: in the default window (the last day),
# not in one of 2 h. The draft denies it, as it denies the recent admin-ssh flows.
OLD_SSH = dataclasses.replace(
    edge("jump1", "db1", 22, flows=5, rule="admin-ssh"), first_seen=RECENT - 4 * HOUR, last_seen=RECENT - 3 * HOUR
)
# Two days old: outside the default window.
OLDER = dataclasses.replace(
    edge("web1", "app1", 8080, flows=8, rule="web-to-app"), first_seen=RECENT - 2 * DAY, last_seen=RECENT - 2 * DAY
)
RECORDED = [*SHIPPED_EDGES, OLD_SSH, OLDER]


@pytest.fixture(scope="module")
def api_url(tmp_path_factory):
    store = recorded_store(str(tmp_path_factory.mktemp("store") / "flows.sqlite"), RECORDED)
    runtime = Runtime(Sources(f"{ROOT}/policies/directory.yaml", SHIPPED_POLICY), EventLog(), None, store=store)
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
    assert lines[0].startswith("replayed 70 flow(s) between 4 host pair(s) recorded in the last 7200 s")  # no OLD_SSH
    assert "  admin-ssh: 3 flow(s), 1 host pair(s)" in lines
    assert "    jump1 -> db1 tcp/22: 3 flow(s)" in lines
    assert lines[-1] == "the draft would deny 3 flow(s) forwarded now (exit status 3)"


def test_a_draft_that_breaks_nothing_exits_0_and_json_is_the_api_answer(api_url, token):
    result = segctl("--policy", SHIPPED_POLICY, "--api", api_url, "--json", "--top", "1", token_file=token)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["newly_denied"]["flows"] == 0 and body["unchanged"]["flows"] == 70 + 5  # the last day: OLD_SSH in
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


@pytest.fixture
def store(tmp_path):
    """A real flow store file holding RECORDED."""
    path = tmp_path / "flows.sqlite"
    recorded_store(str(path), RECORDED)
    return str(path)


def test_offline_the_recorded_verdicts_stand_for_the_running_policy(store, capsys, tmp_path):
    (tmp_path / "draft.yaml").write_text(DRAFT)
    directory = f"{ROOT}/policies/directory.yaml"
    argv = ["replay", "--policy", str(tmp_path / "draft.yaml"), "--store", store, "--directory", directory]
    assert cli.main([*argv, "--since", "2h"]) == 3
    assert "  admin-ssh: 3 flow(s), 1 host pair(s)" in capsys.readouterr().out.splitlines()
    assert cli.main(argv) == 3  # the last day: OLD_SSH's flows too
    assert "  admin-ssh: 8 flow(s), 1 host pair(s)" in capsys.readouterr().out.splitlines()
    assert cli.main(["replay", "--policy", SHIPPED_POLICY, "--store", store, "--json", "--since", "2h"]) == 0
    assert json.loads(capsys.readouterr().out)["unchanged"]["flows"] == 70
    assert cli.main(["replay", "--policy", SHIPPED_POLICY, "--store", store, "--json", "--since", "1w"]) == 0
    assert json.loads(capsys.readouterr().out)["unchanged"]["flows"] == 70 + 5 + 8  # OLDER too


def test_offline_a_store_that_cannot_be_read_exits_1_naming_it(capsys, tmp_path):
    garbage = tmp_path / "flows.sqlite"
    garbage.write_bytes(b"\x00\x01 not an SQLite file" * 400)
    assert cli.main(["replay", "--policy", SHIPPED_POLICY, "--store", str(garbage)]) == 1
    assert capsys.readouterr().err.startswith(
        f"segctl replay: {garbage}: not a readable flow store (file is not a database); move it aside"
    )
    missing = tmp_path / "nowhere.sqlite"
    assert cli.main(["replay", "--policy", SHIPPED_POLICY, "--store", str(missing)]) == 1
    assert capsys.readouterr().err.startswith(f"segctl replay: {missing}: no flow store here; ")
    assert not missing.exists()
