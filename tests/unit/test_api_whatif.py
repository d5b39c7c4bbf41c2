"""POST /v1/policy/simulate and POST /v1/policy/reload?dry_run=true through the real WSGI app,
replaying the flows of a real flow store."""

from __future__ import annotations

import dataclasses
import shutil
import textwrap
from pathlib import Path

import pytest
from webob import Request

from segctl import runtime as runtime_module
from segctl.api import MAX_DRAFT, Api
from segctl.config import Sources
from segctl.core.events import EventLog
from segctl.runtime import Runtime

from ..fakenet import DB, DIRECTORY, POLICY, WEB, Net, tcp
from .flowedges import HOUR, RECENT, SHIPPED_EDGES, edge, recorded_store
from .test_api import ADMIN, ROOT, TOKEN, call

# The shipped policy without admin-ssh: jump1 -> db1 on 22 would break.
DRAFT = Path(f"{ROOT}/policies/policy.yaml").read_text().replace("  - name: admin-ssh\n", "  - name: admin-ssh-gone\n")
DRAFT = DRAFT.replace(
    "    from: admins\n    to: any\n    proto: tcp\n    ports: [22]", "    from: admins\n    to: app\n"
)


# Three hours old: outside a window of 2 h, inside the default day. The draft allows it (web-to-app).
OLD = dataclasses.replace(
    edge("web1", "app1", 8080, flows=9, rule="web-to-app"), first_seen=RECENT - 4 * HOUR, last_seen=RECENT - 3 * HOUR
)


@pytest.fixture
def api(tmp_path):
    for name in ("directory.yaml", "policy.yaml"):
        shutil.copy(f"{ROOT}/policies/{name}", tmp_path / name)
    store = recorded_store(str(tmp_path / "flows.sqlite"), [*SHIPPED_EDGES, OLD])
    sources = Sources(str(tmp_path / "directory.yaml"), str(tmp_path / "policy.yaml"))
    return Api(Runtime(sources, EventLog(), None, store=store), {TOKEN: "ci"})


def post_draft(api, text, path="/v1/policy/simulate", content_type="application/yaml"):
    request = Request.blank(path, method="POST", headers=dict(ADMIN))
    request.body = text.encode() if isinstance(text, str) else text
    request.content_type = content_type
    response = request.get_response(api)
    assert response.content_type == "application/json"
    return response.status_code, response.json


def test_simulate_lists_what_the_draft_would_break_by_the_rule_that_allows_it_now(api):
    status, body = post_draft(api, DRAFT, "/v1/policy/simulate?since=2h&top=3")
    assert status == 200, body
    assert body["since"] == 7200 and body["breaks"] is True
    assert [(r["rule"], r["flows"], r["pairs"]) for r in body["newly_denied"]["by_rule"]] == [("admin-ssh", 3, 1)]
    assert body["newly_denied"]["top"] == [{"src": "jump1", "dst": "db1", "proto": "tcp", "port": 22, "flows": 3}]
    assert body["unchanged"]["flows"] == 67 and body["newly_allowed"]["flows"] == 0  # OLD left out
    shipped = Path(f"{ROOT}/policies/policy.yaml").read_text()
    status, body = post_draft(api, shipped, content_type="text/plain")  # the last day: OLD's 9 flows in
    assert status == 200 and body["breaks"] is False and body["newly_denied"]["flows"] == 0
    assert body["since"] == 86400 and body["unchanged"]["flows"] == 70 + 9


def test_a_draft_with_problems_is_refused_with_draft_line_messages(api):
    status, body = post_draft(api, "rules:\n  - {name: r, from: nowhere, to: any}\n")
    assert status == 400
    assert body["errors"] == ["draft:2: rule r from: unknown group 'nowhere'"]
    assert "draft:2: rule r from" in body["error"]
    status, body = post_draft(api, "rules: [\n")
    assert status == 400 and body["errors"][0].startswith("draft:2: YAML syntax")


@pytest.mark.parametrize(
    "text, content_type, status, message",
    [
        ('{"rules": []}', "application/json", 415, "send the draft policy as YAML text"),
        (b"rules: [\xff]", "application/yaml", 400, "draft is not UTF-8 text"),
        ("x" * (MAX_DRAFT + 1), "text/yaml", 413, f"draft larger than {MAX_DRAFT} bytes"),
        ("[" * 200_000, "text/yaml", 400, "draft refused: 1 problem(s), first: draft:1: YAML: nested too deeply"),
        ("just text", "text/plain", 400, "expected a mapping"),
    ],
)
def test_bad_bodies_get_a_json_4xx(api, text, content_type, status, message):
    answer = post_draft(api, text, content_type=content_type)
    assert answer[0] == status and message in answer[1]["error"], answer


def test_an_alias_bomb_is_refused_quickly(api):
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
    status, body = post_draft(api, "\n".join(lines))
    assert status == 400 and "aliases expand to too many values" in body["error"]


@pytest.mark.parametrize("query", ["since=0", "since=11y", "since=99999999999", "since=soon", "top=0", "top=x"])
def test_bad_since_or_top_is_a_400_naming_it(api, query):
    status, body = post_draft(api, DRAFT, f"/v1/policy/simulate?{query}")
    assert status == 400 and query.split("=")[0] in body["error"], body


def test_without_a_flow_store_simulate_and_the_dry_run_say_so_with_409(api):
    api.runtime.store = None  # as `segctl run --retention 0` starts it
    refused = (409, {"error": "this controller records no flows: it runs with --retention 0"})
    assert post_draft(api, DRAFT) == refused
    assert call(api, "POST", "/v1/policy/reload?dry_run=true") == refused


def controller_api(tmp_path):
    """A runtime over the fake net's directory and policy, with web -> db connected."""
    (tmp_path / "d.yaml").write_text(textwrap.dedent(DIRECTORY))
    (tmp_path / "p.yaml").write_text(textwrap.dedent(POLICY))
    store = recorded_store(str(tmp_path / "flows.sqlite"), [])
    runtime = Runtime(Sources(str(tmp_path / "d.yaml"), str(tmp_path / "p.yaml")), EventLog(), None, store=store)
    net = Net(core=runtime.controller)
    net.announce()
    net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432))
    assert len(runtime.controller.connections) == 1
    return Api(runtime, {TOKEN: "ci"}), net


NO_WEB_TO_DB = "rules:\n  - {name: ping-db, from: any, to: {role: db}, proto: icmp}\n"


@pytest.mark.parametrize(
    "file, change, revoked",
    [
        ("p.yaml", lambda text: NO_WEB_TO_DB, 1),
        ("p.yaml", lambda text: "mode: monitor\n" + NO_WEB_TO_DB, 0),
        pytest.param(
            "p.yaml",
            lambda text: "groups: {db: {role: db}}\nmodes: {db: monitor}\n" + NO_WEB_TO_DB,
            0,
        ),
        ("d.yaml", lambda text: text.replace("ip: 10.0.0.2", "ip: 10.0.0.22"), 1),  # db's address changed
        ("d.yaml", lambda text: "\n".join(line for line in text.splitlines() if "db:" not in line), 1),
        ("d.yaml", lambda text: text.replace("labels: {role: db}", "labels: {role: db, env: x}"), 0),
    ],
)
def test_reload_dry_run_counts_what_the_reload_then_revokes(tmp_path, file, change, revoked):
    api, _ = controller_api(tmp_path)
    path = tmp_path / file
    path.write_text(change(path.read_text()))
    status, body = call(api, "POST", "/v1/policy/reload?dry_run=true")
    assert status == 200 and body["revoked"] == revoked
    assert call(api, "POST", "/v1/policy/reload")[1]["revoked"] == revoked


def test_reload_dry_run_counts_what_a_reload_would_revoke_and_changes_nothing(tmp_path):
    api, net = controller_api(tmp_path)
    running = api.runtime.controller.policy
    (tmp_path / "p.yaml").write_text(NO_WEB_TO_DB)
    status, body = call(api, "POST", "/v1/policy/reload?dry_run=true")
    assert status == 200 and body["dry_run"] is True and body["revoked"] == 1 and body["rules"] == 1
    assert api.runtime.controller.policy is running and len(api.runtime.controller.connections) == 1
    assert [e["kind"] for e in api.runtime.events.latest(100, "reload")] == []
    status, body = call(api, "POST", "/v1/policy/reload?dry_run=false")
    assert status == 200 and body["revoked"] == 1  # the real reload revokes what the dry run said
    assert len(api.runtime.controller.connections) == 0


def test_reload_dry_run_keeps_its_answer_to_a_broken_file_and_refuses_other_parameters(tmp_path):
    api, _ = controller_api(tmp_path)
    (tmp_path / "p.yaml").write_text("rules:\n  - {name: r, from: nowhere, to: any}\n")
    status, body = call(api, "POST", "/v1/policy/reload?dry_run=true")
    assert (
        status == 400
        and body["ok"] is False
        and body["errors"] == [f"{tmp_path}/p.yaml:2: rule r from: unknown group 'nowhere'"]
    )
    assert len(api.runtime.controller.connections) == 1
    assert call(api, "POST", "/v1/policy/reload?dry_run=yes")[0] == 400
    assert call(api, "POST", "/v1/policy/reload?since=1h")[1] == {"error": "unknown query parameter(s): since"}


def test_the_replay_runs_through_run_blocking_off_the_switches_event_loop(api, monkeypatch):
    inside, ran = [], []

    def blocking(function):
        inside.append(function)
        try:
            return function()
        finally:
            inside.pop()

    def watched(name, function):
        def call(*args, **kwargs):
            ran.append((name, bool(inside)))
            return function(*args, **kwargs)

        return call

    api.runtime.run_blocking = blocking
    store = api.runtime.store
    monkeypatch.setattr(store, "edges", watched("store read", store.edges))
    monkeypatch.setattr(runtime_module, "replay", watched("replay", runtime_module.replay))
    assert post_draft(api, DRAFT)[0] == 200
    assert ran == [("store read", True), ("replay", True)]
