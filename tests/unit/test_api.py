"""The REST API called as a WSGI application over a real runtime (no switches attached)."""

import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webob import Request

from segctl.api import MAX_BODY, Api, load_tokens
from segctl.config import Sources
from segctl.core.events import EventLog
from segctl.runtime import Runtime
from segctl.state import load_state

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKEN = "s3cret-token-for-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(tmp_path):
    directory, policy = tmp_path / "directory.yaml", tmp_path / "policy.yaml"
    shutil.copy(f"{ROOT}/policies/directory.yaml", directory)
    shutil.copy(f"{ROOT}/policies/policy.yaml", policy)
    runtime = Runtime(Sources(str(directory), str(policy)), EventLog(), str(tmp_path / "state"))
    app = Api(runtime, {TOKEN: "soc-playbook"})
    app.paths = (directory, policy, tmp_path / "state")
    return app


def call(api, method, path, body=None, headers=ADMIN, raw=None):
    request = Request.blank(path, method=method, headers=dict(headers))
    if raw is not None or body is not None:
        request.body = raw if raw is not None else json.dumps(body).encode()
        request.content_type = "application/json"
    response = request.get_response(api)
    assert response.content_type == "application/json"
    return response.status_code, json.loads(response.body)


def test_health_is_public_and_everything_else_needs_the_token(api):
    assert call(api, "GET", "/v1/health", headers={}) == (200, call(api, "GET", "/v1/health")[1])
    assert call(api, "GET", "/v1/health", headers={})[1]["status"] == "ok"
    for method, path in [
        ("GET", "/v1/hosts"),
        ("GET", "/v1/hosts/web1"),
        ("GET", "/v1/quarantine"),
        ("POST", "/v1/quarantine"),
        ("DELETE", "/v1/quarantine/web1"),
        ("GET", "/v1/flows"),
        ("GET", "/v1/events"),
        ("POST", "/v1/policy/reload"),
        ("GET", "/v1/openapi.json"),
    ]:
        assert call(api, method, path, headers={})[0] == 401
        assert call(api, method, path, headers={"Authorization": "Bearer wrong"})[0] == 401
        assert call(api, method, path, headers={"Authorization": f"Basic {TOKEN}"})[0] == 401


def test_hosts_views(api):
    status, body = call(api, "GET", "/v1/hosts")
    assert status == 200 and len(body["hosts"]) == 9
    web1 = call(api, "GET", "/v1/hosts/web1")[1]
    assert web1 == call(api, "GET", "/v1/hosts/02:00:00:00:01:01")[1]
    assert web1["state"] == "unknown" and web1["location"] is None and web1["labels"]["role"] == "web"
    assert call(api, "GET", "/v1/hosts/nobody") == (404, {"error": "no host 'nobody'"})


def test_quarantine_release_and_their_persistence(api):
    status, body = call(api, "POST", "/v1/quarantine", {"host": "web1", "reason": "EDR: beaconing"})
    assert status == 200 and body["host"] == "web1" and body["by"] == "soc-playbook"
    assert call(api, "GET", "/v1/hosts/web1")[1]["state"] == "quarantined"
    listed = call(api, "GET", "/v1/quarantine")[1]["quarantine"]
    assert [(q["host"], q["reason"]) for q in listed] == [("web1", "EDR: beaconing")]
    assert load_state(str(api.paths[2]))["quarantine"][0]["reason"] == "EDR: beaconing"
    # an unknown device can be cut off by MAC
    assert call(api, "POST", "/v1/quarantine", {"host": "02:00:00:00:99:99", "reason": "rogue"})[0] == 200
    assert call(api, "DELETE", "/v1/quarantine/web1")[0] == 200
    assert call(api, "DELETE", "/v1/quarantine/web1")[0] == 404
    assert call(api, "DELETE", "/v1/quarantine/nobody")[0] == 404
    assert [q["host"] for q in load_state(str(api.paths[2]))["quarantine"]] == ["02:00:00:00:99:99"]
    kinds = [e["kind"] for e in call(api, "GET", "/v1/events?limit=10")[1]["events"]]
    assert kinds == ["quarantine", "quarantine", "release"]


@pytest.mark.parametrize(
    "raw, status, message",
    [
        (b"{not json", 400, "body is not valid JSON"),
        (b"[1, 2]", 400, "body must be a JSON object"),
        (b'{"host": "web1"}', 400, "'reason' is required"),
        (b'{"host": 7, "reason": "x"}', 400, "'host' must be a non-empty string"),
        (b'{"host": "", "reason": "x"}', 400, "'host' must be a non-empty string"),
        (b'{"host": "web1", "reason": "x", "extra": 1}', 400, "unknown field(s): extra"),
        (b'{"host": "nobody", "reason": "x"}', 404, None),
        (b"\xff\xfe", 400, "body is not valid JSON"),
        (b'{"host": "web1", "reason": "' + b"x" * MAX_BODY + b'"}', 413, None),
    ],
)
def test_bad_quarantine_bodies_are_4xx(api, raw, status, message):
    got, body = call(api, "POST", "/v1/quarantine", raw=raw)
    assert got == status and (message is None or body["error"] == message)


def test_events_limit_flows_methods_and_unknown_paths(api):
    assert call(api, "GET", "/v1/events?limit=0")[0] == 400
    assert call(api, "GET", "/v1/events?limit=abc")[0] == 400
    assert call(api, "GET", "/v1/events?limit=5")[0] == 200
    assert call(api, "GET", "/v1/flows") == (200, {"flows": []})
    assert call(api, "PUT", "/v1/hosts")[0] == 405
    assert call(api, "GET", "/v2/nothing")[0] == 404
    assert call(api, "GET", "/v1/openapi.json")[1]["openapi"].startswith("3.")


def test_reload_refuses_a_broken_policy_and_keeps_the_running_one(api):
    directory, policy, _ = api.paths
    good = policy.read_text()
    policy.write_text(good + "  - {name: broken, from: nowhere, to: any}\n")
    status, body = call(api, "POST", "/v1/policy/reload")
    assert status == 400 and body["ok"] is False
    line = len(good.splitlines()) + 1
    assert body["errors"] == [f"{policy}:{line}: rule broken from: unknown group 'nowhere'"]
    assert len(api.runtime.controller.policy.rules) == 7
    policy.write_text(good.replace("mode: enforce", "mode: monitor"))
    status, body = call(api, "POST", "/v1/policy/reload")
    assert status == 200 and body["ok"] and body["mode"] == "monitor" and body["revoked"] == 0
    assert call(api, "POST", "/v1/policy/reload", raw=b'{"x": 1}')[0] == 400


def test_token_file_format(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("# comment\nsoc:0123456789abcdef0123\n0123456789abcdefXYZW\n")
    assert load_tokens(str(path)) == {"0123456789abcdef0123": "soc", "0123456789abcdefXYZW": "api"}
    path.write_text("short\n")
    with pytest.raises(ValueError, match=r"tokens:1: a token needs at least 16"):
        load_tokens(str(path))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH"]),
    path=st.one_of(
        st.sampled_from(
            [
                "/v1/health",
                "/v1/hosts",
                "/v1/quarantine",
                "/v1/flows",
                "/v1/events",
                "/v1/policy/reload",
                "/v1/openapi.json",
            ]
        ),
        st.text(max_size=30).map(lambda t: "/v1/hosts/" + t.replace("?", "").replace("#", "")),
        st.text(max_size=30).map(lambda t: "/v1/quarantine/" + t.replace("?", "").replace("#", "")),
        st.integers().map(lambda n: f"/v1/events?limit={n}"),
    ),
    body=st.one_of(st.none(), json_values, st.fixed_dictionaries({"host": json_values, "reason": json_values})),
    garbage=st.one_of(st.none(), st.binary(max_size=40)),
    authorized=st.booleans(),
)
def test_fuzz_no_input_gets_a_5xx(api, method, path, body, garbage, authorized):
    headers = ADMIN if authorized else {}
    try:
        request = Request.blank(path, method=method, headers=headers)
    except Exception:  # noqa: BLE001 - webob refuses some generated URLs outright; not our server
        return
    if garbage is not None:
        request.body = garbage
    elif body is not None:
        request.body = json.dumps(body).encode()
    response = request.get_response(api)
    assert response.status_code < 500, (method, path, response.body)
    assert "error" in json.loads(response.body) or response.status_code < 400
    assert call(api, "GET", "/v1/health", headers={})[0] == 200
