"""GET /v1/map and POST /v1/policy/suggest through the real WSGI app over a real runtime, which
reads the recorded flows from a real flow store (SQLite, in the test's folder)."""

import os

import pytest
import yaml

from segctl.api import Api
from segctl.core.events import EventLog
from segctl.core.flowlog import ALLOWED, DENIED, MONITORED
from segctl.core.policy import parse_policy
from segctl.core.yamlsrc import load_yaml_text
from segctl.runtime import Runtime

from .flowedges import DAY, RECENT, flow_edge, recorded_store
from .test_api import TOKEN, api, call  # noqa: F401 - the fixture, and the caller

ROGUE = "02:00:00:00:99:99"


def recorded(src, dst, port, verdict=ALLOWED, flows=1, proto="tcp", last=RECENT):
    # Recorded labels are stale on purpose: the running directory's must win.
    stale = None if src == ROGUE else {"role": "stale"}
    first = last - 1000.0 if flows > 1 else last
    return flow_edge(src, dst, port, proto, verdict, flows, stale, {"role": "stale"}, first, last)


EDGES = [
    recorded("web1", "app1", 8080, flows=7),
    recorded("web2", "app1", 8080, flows=3),
    recorded("app1", "web1", 22, verdict=DENIED, flows=2),
    recorded("jump1", "db1", 22, verdict=ALLOWED),
    recorded("hr1", "printer1", 631, verdict=MONITORED),
    recorded(ROGUE, "db1", 5432, verdict=DENIED, flows=4),
]
# Three days old: inside the windows of 7 days and more (and with no window), outside 24 h and 2 days.
OLD = recorded("web2", "db1", 5432, verdict=DENIED, last=RECENT - 3 * DAY)


@pytest.fixture
def flows(api):  # noqa: F811 - pytest's fixture by name
    """The API over a runtime of the shipped files whose flow store holds EDGES and OLD."""
    directory, policy, state = api.paths
    store = recorded_store(os.path.join(os.path.dirname(state), "flows.sqlite"), [*EDGES, OLD])
    runtime = Runtime(api.runtime.sources, EventLog(), str(state), store=store)
    return Api(runtime, {TOKEN: "soc-playbook"})


def by_label(body):
    label = {node["id"]: node["label"] for node in body["nodes"]}
    return {(label[e["src"]], label[e["dst"]], e["proto"], e["port"]): e for e in body["edges"]}


def test_map_groups_by_the_running_directory_and_judges_by_the_running_policy(flows):
    status, body = call(flows, "GET", "/v1/map?by=role&since=24h")
    assert status == 200 and body["by"] == ["role"]
    edges = by_label(body)
    assert ("role=web", "role=db", "tcp", 5432) not in edges  # OLD: before the window
    web_app = edges[("role=web", "role=app", "tcp", 8080)]
    assert (web_app["flows"], web_app["pairs"], web_app["policy"]["status"]) == (10, 2, "allow")
    assert edges[("role=app", "role=web", "tcp", 22)]["policy"]["status"] == "deny"
    assert edges[("role=workstation", "role=printer", "tcp", 631)]["policy"]["status"] == "deny"
    assert edges[(ROGUE, "role=db", "tcp", 5432)]["policy"] == {"allow": 0, "monitor": 0, "deny": 1, "status": "deny"}
    assert not any("stale" in node["label"] for node in body["nodes"])


def test_map_filters_by_verdict_and_takes_two_keys(flows):
    body = call(flows, "GET", "/v1/map?verdict=denied&by=role,env")[1]
    # No since: everything recorded, OLD (web2 -> db1, once) too.
    assert sorted(e["observed"]["denied"] for e in body["edges"]) == [1, 2, 4]
    assert "role=db,env=prod" in [node["label"] for node in body["nodes"]]


@pytest.mark.parametrize(
    "query, message",
    [
        ("verdict=maybe", "verdict must be one of allowed, monitored, denied, not 'maybe'"),
        ("since=7x", "'since' must be a number of seconds or a duration like 90s, 30m, 24h, 7d or 2w"),
        ("since=0", "'since' must be a number of seconds or a duration like 90s, 30m, 24h, 7d or 2w"),
        ("by=,", "'by': ',' is not a list of label keys like role or role,app"),
        ("bye=role", "unknown query parameter(s): bye"),
    ],
)
def test_map_refuses_bad_parameters_with_400(flows, query, message):
    assert call(flows, "GET", f"/v1/map?{query}") == (400, {"error": message})


def test_suggest_answers_a_draft_that_parses_and_allows_what_was_forwarded(flows):
    status, body = call(flows, "POST", "/v1/policy/suggest", {"by": ["role"], "since": "2d"})
    assert status == 200  # OLD is before the window: not counted below
    policy = parse_policy([(load_yaml_text(body["draft"], "draft.yaml"), "draft.yaml")])
    assert [(r.src_text, r.dst_text, r.proto, r.ports) for r in policy.rules] == [
        ("jump", "db", "tcp", ((22, 22),)),
        ("web", "app", "tcp", ((8080, 8080),)),
        ("workstation", "printer", "tcp", ((631, 631),)),
    ]
    assert body["coverage"] == {
        "observed": 18,
        "allowed": 12,
        "forwarded": 12,
        "forwarded_allowed": 12,
        "percent": 66.7,
    }
    assert body["left_out"] == {"not in the directory": 4, "denied": 2}
    assert "# window: 2d; by: role;" in body["draft"]
    assert yaml.safe_load(body["draft"])["mode"] == "enforce"


def test_suggest_without_a_body_uses_the_defaults_and_takes_its_options(flows):
    assert call(flows, "POST", "/v1/policy/suggest")[1]["rules"] == 3
    body = call(flows, "POST", "/v1/policy/suggest", {"min_flows": 5, "exclude": ["role=jump"], "merge_gap": 2})[1]
    assert body["rules"] == 1 and body["left_out"]["excluded"] == 1 and body["left_out"]["below --min-flows"] == 1


@pytest.mark.parametrize(
    "body, message",
    [
        ({"min_flows": 0}, "'min_flows' must be a whole number from 1 to 1000000000"),
        ({"merge_gap": -1}, "'merge_gap' must be a whole number from 0 to 65535"),
        ({"exclude": "role=x"}, "'exclude' must be a list of selectors like \"role=scanner\""),
        ({"exclude": ["scanner"]}, "'exclude': 'scanner' is not a selector like role=scanner or role=scanner,env=dev"),
        ({"by": 3}, "'by' must be text of at most 1000 characters"),
        ({"by": [None]}, "'by' must be text of at most 1000 characters"),
        ({"since": -5}, "'since' must be more than 0 and at most 315360000 seconds"),
        ({"since": None}, "'since' is null: leave it out for its default"),
        ({"rules": 1}, "unknown field(s): rules"),
    ],
)
def test_suggest_refuses_bad_bodies_with_400(flows, body, message):
    assert call(flows, "POST", "/v1/policy/suggest", body) == (400, {"error": message})


def test_without_a_flow_store_the_map_and_the_draft_are_refused_with_409(api):  # noqa: F811
    refused = (409, {"error": "this controller records no flows: it runs with --retention 0"})
    assert call(api, "GET", "/v1/map") == refused
    assert call(api, "POST", "/v1/policy/suggest") == refused
    assert call(api, "POST", "/v1/policy/suggest", {"min_flows": 0})[0] == 400  # a bad body is still a 400


def test_a_flow_store_that_cannot_be_read_is_a_409_that_says_why(flows):
    path = flows.runtime.store.path
    assert call(flows, "GET", "/v1/map")[0] == 200
    with open(path, "wb") as handle:  # replaced under the running controller
        handle.write(b"\x00not a flow store any more" * 500)
    for method, target in (("GET", "/v1/map?since=1h"), ("POST", "/v1/policy/suggest")):
        status, body = call(flows, method, target)
        assert status == 409, body
        assert body["error"].startswith(f"the flow store cannot be read: {path}: not a readable flow store (")
