"""`GET /v1/hosts/HOST/reach` through the real WSGI app, and `segctl reach` against it over HTTP."""

import re
import subprocess
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segctl.api import Api
from segctl.core.events import EventLog
from segctl.core.flowlog import FlowEdge
from segctl.core.policy import load_policy
from segctl.core.textsafe import printable
from segctl.reachshow import dot_quoted, reach_dot, reach_text
from segctl.runtime import Runtime

from . import test_api
from .flowedges import HOUR, RECENT, recorded_store
from .test_api import ROOT, TOKEN, call

api = test_api.api  # the fixture: the API over a runtime of the shipped files


def reached(body):
    return [(e["hop"], e["host"], e["via"], [s["rule"] for s in e["services"]]) for e in body["reached"]]


def test_reach_of_the_shipped_network_hop_by_hop(api):
    status, body = call(api, "GET", "/v1/hosts/web1/reach?hops=2")
    assert status == 200 and body["direction"] == "from" and body["per_hop"] == [2, 6]
    # mon1 may ping every host: through it, web1's second hop is the whole network.
    assert reached(body) == [
        (1, "app1", "web1", ["web-to-app"]),
        (1, "mon1", "web1", ["syslog"]),
        (2, "db1", "app1", ["app-to-db"]),
        *[(2, host, "mon1", ["monitoring-ping"]) for host in ("hr1", "hrapp1", "jump1", "printer1", "web2")],
    ]
    by_mac = call(api, "GET", "/v1/hosts/02:00:00:00:01:01/reach?hops=2")[1]
    assert by_mac == body
    status, body = call(api, "GET", "/v1/hosts/db1/reach?direction=to")
    assert reached(body) == [
        (1, "app1", "db1", ["app-to-db"]),
        (1, "jump1", "db1", ["admin-ssh"]),
        (1, "mon1", "db1", ["monitoring-ping"]),
    ]
    assert body["reached"][2]["services"][0]["text"] == "icmp echo-request"


def test_a_quarantine_takes_the_host_out_of_every_answer_and_a_release_puts_it_back(api):
    assert "app1" in [e["host"] for e in call(api, "GET", "/v1/hosts/web1/reach")[1]["reached"]]
    assert call(api, "POST", "/v1/quarantine", {"host": "app1", "reason": "EDR"})[0] == 200
    assert [e["host"] for e in call(api, "GET", "/v1/hosts/web1/reach")[1]["reached"]] == ["mon1"]
    assert call(api, "GET", "/v1/hosts/app1/reach?direction=to")[1]["quarantined"] is True
    assert call(api, "DELETE", "/v1/quarantine/app1")[0] == 200
    assert "app1" in [e["host"] for e in call(api, "GET", "/v1/hosts/web1/reach")[1]["reached"]]


def test_a_reload_answers_from_the_new_policy(api):
    policy = api.paths[1]
    policy.write_text(policy.read_text().replace("to: app\n", "to: db\n", 1))  # web-to-app now to db
    assert call(api, "POST", "/v1/policy/reload")[0] == 200
    assert reached(call(api, "GET", "/v1/hosts/web1/reach")[1])[0] == (1, "db1", "web1", ["web-to-app"])
    # A new policy over the same directory object (as a remote directory's cache hands it over).
    controller = api.runtime.controller
    controller.reload(controller.directory, load_policy(f"{ROOT}/policies/policy.yaml"), 0.0)
    assert reached(call(api, "GET", "/v1/hosts/web1/reach")[1])[0] == (1, "app1", "web1", ["web-to-app"])


def test_flows_seen_come_from_the_flow_store_over_the_window_asked(api, tmp_path):
    web_app = FlowEdge("web1", True, "app1", True, "tcp", 8080, "allowed", "web-to-app", 12, RECENT - 60, RECENT)
    # Three hours old: outside a window of 2 h.
    web_mon = FlowEdge(
        "web1", True, "mon1", True, "udp", 514, "allowed", "syslog", 2, RECENT - 4 * HOUR, RECENT - 3 * HOUR
    )
    store = recorded_store(str(tmp_path / "flows.sqlite"), [web_app, web_mon])
    recorded = Api(Runtime(api.runtime.sources, EventLog(), None, store=store), {TOKEN: "soc-playbook"})
    status, body = call(recorded, "GET", "/v1/hosts/web1/reach?since=2h")
    assert status == 200 and body["flows_recorded"] is True
    assert [entry["host"] for entry in body["reached"]] == ["app1", "mon1"]
    assert body["reached"][0]["seen"] == [
        {"proto": "tcp", "port": 8080, "flows": 12, "last_seen": RECENT, "verdict": "allowed", "rule": "web-to-app"}
    ]
    assert body["reached"][1]["seen"] == []
    syslog = {"proto": "udp", "port": 514, "flows": 2, "last_seen": RECENT - 3 * HOUR, "verdict": "allowed"}
    assert call(recorded, "GET", "/v1/hosts/web1/reach")[1]["reached"][1]["seen"] == [dict(syslog, rule="syslog")]


def test_without_a_readable_flow_store_the_reach_still_answers_with_seen_null(api, tmp_path):
    body = call(api, "GET", "/v1/hosts/web1/reach")[1]  # recording off
    assert body["flows_recorded"] is False and body["reached"][0]["seen"] is None
    path = tmp_path / "flows.sqlite"
    runtime = Runtime(api.runtime.sources, EventLog(), None, store=recorded_store(str(path), []))
    path.write_bytes(b"\x00 not a flow store any more" * 400)  # replaced under the running controller
    status, unreadable = call(Api(runtime, {TOKEN: "soc-playbook"}), "GET", "/v1/hosts/web1/reach")
    assert (status, unreadable) == (200, body)


@pytest.mark.parametrize(
    "query, status, message",
    [
        ("hops=0", 400, "hops must be a number from 1 to 10"),
        ("hops=11", 400, "hops must be a number from 1 to 10"),
        ("hops=abc", 400, "hops must be a number from 1 to 10"),
        ("direction=sideways", 400, "direction must be 'from'"),
        ("since=forever", 400, "since: 'forever' is not a duration"),
        ("hop=2", 400, "unknown query parameter(s): hop"),
    ],
)
def test_bad_questions_are_refused_saying_why(api, query, status, message):
    answer = call(api, "GET", f"/v1/hosts/web1/reach?{query}")
    assert answer[0] == status and answer[1]["error"].startswith(message)


def test_an_unknown_host_is_404(api):
    assert call(api, "GET", "/v1/hosts/nobody/reach") == (404, {"error": "no host 'nobody' in the directory"})


# -- the command line ------------------------------------------------------------------------


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(api, tmp_path):
    server = make_server("127.0.0.1", 0, api, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    (tmp_path / "token").write_text(f"cli:{TOKEN}\n")
    yield ["--api", f"http://127.0.0.1:{server.server_port}", "--api-token-file", str(tmp_path / "token")]
    server.shutdown()
    server.server_close()


def segctl(*args):
    return subprocess.run([sys.executable, "-m", "segctl", *args], capture_output=True, text=True, cwd=ROOT)


def test_segctl_reach_prints_each_hop_and_the_reverse(served):
    out = segctl("reach", "web1", "--hops", "2", *served)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("web1 (app=shop,env=prod,role=web) may open connections to 8 host(s), within 2 hop(s)")
    assert "hop 1: 2 host(s)" in lines and "hop 2: 6 host(s)" in lines
    assert re.search(r"^db1 +app=shop,env=prod,role=db +app1 +app-to-db tcp/5432 +- +no$", out.stdout, re.M)
    back = segctl("reach", "db1", "--to", *served)
    assert (
        back.stdout.startswith("3 host(s) may open connections to db1")
        and "monitoring-ping icmp echo-request" in back.stdout
    )
    refused = segctl("reach", "web1", "--hops", "12", *served)
    assert refused.returncode == 1 and refused.stderr == "segctl: hops must be a number from 1 to 10\n"
    dot = segctl("reach", "web1", "--dot", *served)
    assert dot.stdout.startswith("digraph reach {") and '"web1" -> "app1"' in dot.stdout


# Names and label values as an attacker would write them: quotes, backslashes, newlines, escapes.
EVIL = 'x"; a -> b [label="owned"]; "\\\n\x1b[2J\u2028'


def body_with(name, value):
    entry = {
        "host": name,
        "labels": {"k": value},
        "hop": 1,
        "via": "web1",
        "services": [{"rule": name, "text": "tcp/22"}],
        "monitored": True,
        "attached": False,
        "seen": [],
    }
    return {
        "host": "web1",
        "labels": {"role": value},
        "direction": "from",
        "hops": 1,
        "quarantined": False,
        "flows_recorded": True,
        "per_hop": [1],
        "reached": [entry],
    }


QUOTED = r'"(?:[^"\\]|\\.)*"'


def test_dot_output_stays_one_statement_per_line_whatever_a_name_holds():
    dot = reach_dot(body_with(EVIL, EVIL))
    lines = dot.splitlines()
    assert len(lines) == 7 and lines[-1] == "}"
    statement = re.compile(rf"^  {QUOTED}( -> {QUOTED})? \[label={QUOTED}(, style=\w+)?\];$")
    assert all(statement.match(line) for line in lines[3:-1]), lines
    # The quoted name reads back (DOT unescaping) as the escaped text, quote and backslash kept.
    unquoted = re.sub(r"\\(.)", r"\1", dot_quoted(EVIL)[1:-1])
    assert unquoted == 'x"; a -> b [label="owned"]; "\\\\n\\x1b[2J\\u2028'


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text())
def test_any_name_or_label_value_reads_back_from_its_dot_string(name, value):
    lines = reach_dot(body_with(name, value)).splitlines()
    statement = re.compile(rf"^  {QUOTED}( -> {QUOTED})? \[label={QUOTED}(, style=\w+)?\];$")
    assert len(lines) == 7 and all(statement.match(line) for line in lines[3:-1])
    assert re.sub(r"\\(.)", r"\1", dot_quoted(name)[1:-1]) == printable(name)


def test_reach_tables_print_one_row_per_host_whatever_a_name_holds():
    text = reach_text(body_with(EVIL, EVIL))
    assert len(text.splitlines()) == 5 and "\x1b" not in text and "\u2028" not in text


def test_the_text_shows_one_seen_line_per_service_whatever_the_verdicts():
    from segctl.reachshow import _seen

    seen = [
        {"proto": "tcp", "port": 22, "flows": 5, "last_seen": 100.0, "verdict": "monitored", "rule": None},
        {"proto": "tcp", "port": 22, "flows": 2, "last_seen": 200.0, "verdict": "allowed", "rule": "ssh"},
        {"proto": "icmp", "port": 8, "flows": 1, "last_seen": 50.0, "verdict": "monitored", "rule": None},
    ]
    text = _seen({"seen": seen})
    assert text.count("tcp/22") == 1 and "tcp/22 7×" in text and "icmp/8 1×" in text
