"""The REST API called as a WSGI application over a real runtime (no switches attached)."""

import io
import json
import logging
import os
import shutil

import eventlet
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webob import Request

from segctl import framework
from segctl.api import MAX_BODY, Api, load_tokens
from segctl.config import Sources
from segctl.core.discovery import PROBE_SOURCE_MAC
from segctl.core.events import EventLog
from segctl.core.macs import LOCATOR_MAC
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


def raw_call(api, method, path: bytes, query: bytes = b"", headers=ADMIN, body: bytes = b""):
    """Call the API with a WSGI environ built as eventlet's server builds it from the wire: the
    path %-decoded to bytes, each byte one latin-1 character (PEP 3333), the query string raw.
    Request.blank cannot carry every byte sequence a client can send."""
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path.decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
    }
    environ.update(("HTTP_" + name.upper().replace("-", "_"), value) for name, value in headers.items())
    response = Request(environ).get_response(api)
    assert response.content_type == "application/json", (method, path, query, response.body)
    return response.status_code, json.loads(response.body), response.headers


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


def test_reload_parses_the_directory_file_again_only_when_it_changed(api, monkeypatch):
    from segctl import config

    parsed = []
    parse = config.parse_directory
    monkeypatch.setattr(config, "parse_directory", lambda data, file: parsed.append(file) or parse(data, file))
    directory, policy, _ = api.paths
    before = api.runtime.controller.directory
    policy.write_text(policy.read_text().replace("mode: enforce", "mode: monitor"))  # a policy edit
    assert call(api, "POST", "/v1/policy/reload")[1]["mode"] == "monitor"
    assert parsed == [] and api.runtime.controller.directory is before
    directory.write_text(directory.read_text() + '  web9: {mac: "02:00:00:00:01:09", labels: {role: web}}\n')
    status, body = call(api, "POST", "/v1/policy/reload")
    assert status == 200 and body["hosts"] == len(before) + 1 and parsed == [str(directory)]
    assert api.runtime.controller.directory.find("web9") is not None
    assert call(api, "POST", "/v1/policy/reload")[1]["ok"] and parsed == [str(directory)]  # unchanged again
    directory.write_text(directory.read_text().replace("web9:", "web 9:"))  # broken: refused, nothing kept
    assert call(api, "POST", "/v1/policy/reload")[0] == 400
    assert api.runtime.controller.directory.find("web9") is not None


def test_actions_put_garbage_collection_off_until_the_last_of_them_is_confirmed(api, monkeypatch):
    import gc

    from segctl.runtime import ACTIONS

    during = []
    confirm = api.runtime.confirm
    monkeypatch.setattr(
        api.runtime, "confirm", lambda messages: during.append((gc.isenabled(), ACTIONS.under_way)) or confirm(messages)
    )
    assert gc.isenabled()
    assert call(api, "POST", "/v1/quarantine", {"host": "web1", "reason": "x"})[0] == 200
    assert call(api, "DELETE", "/v1/quarantine/web1")[0] == 200
    assert call(api, "POST", "/v1/policy/reload")[0] == 200
    assert during == [(False, 1)] * 3 and gc.isenabled() and ACTIONS.under_way == 0
    with ACTIONS.running():
        with ACTIONS.running():  # two actions at once: the first to end does not resume it
            pass
        assert not gc.isenabled() and ACTIONS.under_way == 1
    assert gc.isenabled()
    gc.disable()  # paused by someone else: left paused
    try:
        with ACTIONS.running():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


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


# What eventlet hands the application: any bytes in the path (after %-decoding) and the query.
raw_paths = st.tuples(
    st.sampled_from(
        [
            b"/",
            b"/v1/health",
            b"/v1/hosts",
            b"/v1/hosts/",
            b"/v1/quarantine",
            b"/v1/quarantine/",
            b"/v1/flows",
            b"/v1/events",
            b"/v1/policy/reload",
            b"/v1/openapi.json",
        ]
    ),
    st.one_of(st.just(b""), st.binary(max_size=30), st.text(max_size=20).map(str.encode)),
).map(b"".join)
raw_queries = st.one_of(
    st.just(b""),
    st.binary(max_size=30),
    st.integers().map(lambda n: b"limit=%d" % n),
    st.text(max_size=12).map(lambda t: b"kind=" + t.encode()),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "TRACE"]),
    path=raw_paths,
    query=raw_queries,
    body=st.one_of(st.none(), json_values, st.fixed_dictionaries({"host": json_values, "reason": json_values})),
    garbage=st.one_of(st.none(), st.binary(max_size=40)),
    authorized=st.booleans(),
)
def test_fuzz_no_input_gets_a_5xx(api, method, path, query, body, garbage, authorized):
    raw = garbage if garbage is not None else b"" if body is None else json.dumps(body).encode()
    status, answer, _ = raw_call(api, method, path, query, ADMIN if authorized else {}, raw)
    assert status < 500, (method, path, query, answer)
    assert "error" in answer or status < 400
    assert call(api, "GET", "/v1/health", headers={})[0] == 200


DEEP_JSON = b"[" * 60_000  # nested deeper than json's recursive parser can follow


@pytest.mark.parametrize(
    "method, path, query, headers, body, status, message",
    [
        ("GET", b"/\xff", b"", {}, b"", 400, "the URL is not valid UTF-8 (after %-decoding)"),
        ("GET", b"/v1/hosts/\xc3", b"", ADMIN, b"", 400, "the URL is not valid UTF-8 (after %-decoding)"),
        ("GET", b"/v1/events", b"limit=%ff", ADMIN, b"", 400, "the URL is not valid UTF-8 (after %-decoding)"),
        ("GET", b"/v1/events", b"limit=%C2%B2", ADMIN, b"", 400, "limit must be a number from 1 to 10000"),
        ("GET", b"/v1/events", b"limit=" + b"9" * 5000, ADMIN, b"", 400, "limit must be a number from 1 to 10000"),
        ("GET", b"/v1/events", b"limt=5", ADMIN, b"", 400, "unknown query parameter(s): limt"),
        ("GET", b"/v1/events", b"limit=1&limit=5", ADMIN, b"", 400, "query parameter(s) given more than once: limit"),
        ("POST", b"/v1/policy/reload", b"dry_run=true&apply=now", ADMIN, b"", 400, "unknown query parameter(s): apply"),
        ("POST", b"/v1/quarantine", b"", ADMIN, DEEP_JSON, 400, "body is nested too deeply"),
        ("POST", b"/v1/policy/reload", b"", ADMIN, DEEP_JSON, 400, "body is nested too deeply"),
    ],
)
def test_attack_inputs_get_a_json_4xx_not_a_traceback(api, method, path, query, headers, body, status, message):
    # Issue 15 item 1: `GET /%ff` answered eventlet's 500 with a traceback; `[[[[...` a 500.
    assert raw_call(api, method, path, query, headers, body)[:2] == (status, {"error": message})


def test_over_the_wire_a_bad_path_gets_json_and_no_traceback_from_eventlet(api):
    """Through the server segctl runs (eventlet, on loopback): an application that raised got
    eventlet's own 500 with the traceback as its body."""
    server = framework.listen("127.0.0.1", 0)
    serving = eventlet.spawn(framework.serve_wsgi, server, api)
    try:
        with eventlet.Timeout(10):
            client = eventlet.connect(server.getsockname())
            client.sendall(b"GET /%ff HTTP/1.1\r\nHost: segctl\r\nConnection: close\r\n\r\n")
            answer = b"".join(iter(lambda: client.recv(65536), b""))
            client.close()
    finally:
        serving.kill()
        server.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"Traceback" not in answer
    assert json.loads(body) == {"error": "the URL is not valid UTF-8 (after %-decoding)"}


def test_a_reason_with_a_lone_surrogate_is_refused_before_it_can_poison_the_saved_state(api):
    # JSON's "\ud800" decodes to a str that UTF-8 can not encode: saved, it broke every later save.
    status, body = call(api, "POST", "/v1/quarantine", raw=b'{"host": "web1", "reason": "\\ud800"}')
    assert status == 400 and "'reason' holds a lone surrogate" in body["error"]
    assert call(api, "POST", "/v1/quarantine", {"host": "web2", "reason": "EDR"})[0] == 200


def test_an_unexpected_error_is_logged_with_its_traceback_and_answered_without_internals(api, caplog, monkeypatch):
    def broken():
        raise KeyError("/opt/segctl/internals")

    monkeypatch.setattr(api.runtime, "health", broken)
    with caplog.at_level(logging.ERROR, logger="segctl.api"):
        status, body, _ = raw_call(api, "GET", b"/v1/health")
    assert (status, body) == (500, {"error": "internal error; see the controller log"})
    [record] = caplog.records
    assert record.exc_info[0] is KeyError and "'GET' '/v1/health'" in record.getMessage()


def test_a_query_string_is_split_on_ampersands_only(api):
    event = api.runtime.events.record("deny;x", 5.0)
    assert raw_call(api, "GET", b"/v1/events", b"limit=1&kind=deny%3Bx")[:2] == (200, {"events": [event]})
    assert raw_call(api, "GET", b"/v1/events", b"limit=1&kind=deny;x")[:2] == (200, {"events": [event]})


def test_405_names_the_allowed_methods_in_an_allow_header(api):
    status, body, headers = raw_call(api, "PUT", b"/v1/quarantine")
    assert status == 405 and headers["Allow"] == "GET, POST"
    assert body == {"error": "PUT is not allowed on /v1/quarantine (allowed: GET, POST)"}
    assert raw_call(api, "TRACE", b"/v1/hosts/web1")[2]["Allow"] == "GET"


@pytest.mark.parametrize(
    "mac, why",
    [
        ("01:80:c2:00:00:0e", "01:80:c2:00:00:0e is a multicast (group) address"),  # LLDP
        ("01-80-C2-00-00-00", "01:80:c2:00:00:00 is a multicast (group) address"),  # STP, any spelling
        ("ff:ff:ff:ff:ff:ff", "ff:ff:ff:ff:ff:ff is a multicast (group) address"),
        ("33:33:00:00:00:01", "33:33:00:00:00:01 is a multicast (group) address"),
        ("00:00:00:00:00:00", "00:00:00:00:00:00 is the all-zero address"),
        (LOCATOR_MAC, f"{LOCATOR_MAC} is the source address of the controller's ARP requests locating hosts"),
        (PROBE_SOURCE_MAC, f"{PROBE_SOURCE_MAC} is the source address of the controller's LLDP probes"),
    ],
)
def test_quarantine_refuses_addresses_no_host_owns(api, mac, why):
    # Issue 15 item 2: drops on 01:80:c2:00:00:0e swallowed the LLDP probes; every link vanished.
    status, body = call(api, "POST", "/v1/quarantine", {"host": mac, "reason": "attack run"})
    assert status == 400 and body["error"] == f"{why}: quarantine takes a host's unicast MAC"
    assert call(api, "GET", "/v1/quarantine")[1] == {"quarantine": []}
    assert load_state(str(api.paths[2]))["quarantine"] == []


def test_a_group_address_quarantined_before_the_check_can_still_be_released(api):
    bad = {"host": "01:80:c2:00:00:0e", "mac": "01:80:c2:00:00:0e", "reason": "old", "since": 1.0, "by": "x"}
    api.runtime.controller.restore_quarantine([bad])
    assert call(api, "DELETE", "/v1/quarantine/01:80:c2:00:00:0e")[0] == 200
    assert call(api, "GET", "/v1/quarantine")[1] == {"quarantine": []}
