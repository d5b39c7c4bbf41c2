"""What-if replay (segctl.core.replay): recorded flows decided by the running policy and a draft."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segctl.core.decision import DecisionIndex
from segctl.core.flowlog import DENIED, MONITORED, FlowEdge
from segctl.core.replay import BY_DEFAULT_DENY, BY_MONITOR, replay

from .flowedges import SHIPPED_EDGES, SHIPPED_LABELS, edge
from .helpers import policy

RUNNING = """
groups: {web: {role: web}, app: {role: app}, db: {role: db}, jump: {role: jump}}
rules:
  - {name: web-to-app, from: web, to: app, proto: tcp, ports: [8080]}
  - {name: app-to-db, from: app, to: db, proto: tcp, ports: [5432]}
  - {name: admin-ssh, from: jump, to: any, proto: tcp, ports: [22]}
"""
# The draft drops admin-ssh (breaks jump1 -> db1), lets web reach db (allows web1 -> db1).
DRAFT = """
groups: {web: {role: web}, app: {role: app}, db: {role: db}}
rules:
  - {name: web-to-app, from: web, to: app, proto: tcp, ports: [8080]}
  - {name: shop-db, from: {app: shop}, to: db, proto: tcp, ports: [5432]}
"""


def run(edges, draft=DRAFT, running=RUNNING, labels=None):
    running_index = DecisionIndex(policy(running)) if running is not None else None
    return replay(edges, DecisionIndex(policy(draft)), running_index, labels).to_json(top=5)


def test_each_flow_is_newly_denied_newly_allowed_or_unchanged_filed_under_the_deciding_rule():
    report = run(SHIPPED_EDGES)
    denied = report["newly_denied"]
    assert (denied["flows"], denied["pairs"]) == (3, 1)
    assert denied["by_rule"] == [
        {
            "rule": "admin-ssh",  # the running rule that allows it now
            "flows": 3,
            "pairs": 1,
            "top": [{"src": "jump1", "dst": "db1", "proto": "tcp", "port": 22, "flows": 3}],
        }
    ]
    allowed = report["newly_allowed"]
    assert [(r["rule"], r["flows"]) for r in allowed["by_rule"]] == [("shop-db", 2)]  # the draft's rule
    unchanged = report["unchanged"]
    assert [(r["rule"], r["flows"]) for r in unchanged["by_rule"]] == [("web-to-app", 40), ("shop-db", 25)]
    assert report["replayed"] == {"flows": 70, "pairs": 4}
    assert report["breaks"] is True
    assert report["decisions"] == 4


def test_the_exit_status_is_3_only_when_the_draft_would_deny_a_flow_forwarded_now():
    running_index = DecisionIndex(policy(RUNNING))
    assert replay(SHIPPED_EDGES, DecisionIndex(policy(DRAFT)), running_index).exit_status() == 3
    assert replay(SHIPPED_EDGES, running_index, running_index).exit_status() == 0
    assert replay(SHIPPED_EDGES[3:], DecisionIndex(policy(DRAFT)), running_index).exit_status() == 0


def test_top_pairs_sum_the_flows_of_a_pair_and_come_out_largest_first():
    edges = [
        edge("jump1", "db1", 22, flows=3, rule="admin-ssh"),
        edge("jump1", "app1", 22, flows=7, rule="admin-ssh"),
        edge("jump1", "db1", 22, flows=5, verdict=MONITORED),  # the same service, recorded otherwise
    ]
    top = run(edges)["newly_denied"]["by_rule"][0]["top"]
    assert [(t["dst"], t["flows"]) for t in top] == [("db1", 8), ("app1", 7)]
    assert len(run(edges * 3)["newly_denied"]["top"]) == 2
    many = [edge("jump1", "db1", port, flows=port, rule="admin-ssh") for port in (22,)]
    assert run(many)["newly_denied"]["top"][0]["flows"] == 22


def test_monitored_destinations_forward_what_no_rule_allows_and_are_counted_as_would_deny():
    watching = DRAFT + "modes: {db: monitor}\n"
    report = run(SHIPPED_EDGES, draft=watching)
    assert report["newly_denied"]["flows"] == 0  # jump1 -> db1 forwarded: db is monitored
    monitored = report["would_deny_once_enforced"]
    assert [(r["rule"], r["flows"], r["pairs"]) for r in monitored["by_rule"]] == [(BY_MONITOR, 3, 1)]
    # The running policy monitors db; the draft enforces it: what only monitoring let through breaks.
    running = RUNNING.replace("  - {name: admin-ssh, from: jump, to: any, proto: tcp, ports: [22]}\n", "")
    report = run(SHIPPED_EDGES, draft=DRAFT + "modes: {db: enforce}\n", running=running + "modes: {db: monitor}\n")
    assert [(r["rule"], r["flows"]) for r in report["newly_denied"]["by_rule"]] == [(BY_MONITOR, 3)]
    assert report["would_deny_once_enforced"]["flows"] == 0


def test_offline_the_recorded_verdict_is_the_running_decision():
    edges = [
        edge("web1", "app1", 8080, flows=4, rule="web-to-app"),
        edge("jump1", "db1", 22, flows=3, verdict=MONITORED),
        edge("web1", "db1", 5432, flows=2, verdict=DENIED),
        edge("app1", "db1", 5432, flows=1, verdict=DENIED),  # denied then (a quarantine, say)
    ]
    report = run(edges, running=None)
    assert [(r["rule"], r["flows"]) for r in report["newly_denied"]["by_rule"]] == [(BY_MONITOR, 3)]
    assert [(r["rule"], r["flows"]) for r in report["newly_allowed"]["by_rule"]] == [("shop-db", 3)]
    assert [(r["rule"], r["flows"]) for r in report["unchanged"]["by_rule"]] == [("web-to-app", 4)]


def test_current_directory_labels_win_and_flows_no_policy_decides_are_not_replayed():
    moved = {"jump1": {"role": "app", "app": "shop"}}  # jump1 relabelled since it was recorded
    report = run(SHIPPED_EDGES, labels=moved.get)
    assert report["newly_denied"]["flows"] == 0
    unknown = [
        edge("02:00:00:00:99:99", "db1", 22, flows=9, verdict=DENIED, known=False),
        edge("web1", "app1", None, flows=2, proto="tcp", rule="web-to-app"),
        edge("web1", "app1", None, flows=1, proto="other", verdict=DENIED),
        edge("web1", "nobody", 80, flows=5, labels={"web1": SHIPPED_LABELS["web1"]}),
    ]
    report = run(unknown)
    assert report["not_replayed"] == {"flows": 17, "edges": 4}
    assert report["replayed"] == {"flows": 0, "pairs": 0}


# -- the memoized replay equals a naive one, edge by edge, rule by rule ------------------------
LABEL_SETS = [{}, {"role": "a"}, {"role": "b"}, {"env": "b"}, {"role": "a", "env": "a"}, {"role": "b", "env": "b"}]
LABEL_VALUES = st.sampled_from(LABEL_SETS)
SELECTOR = st.sampled_from(["any", "{role: a}", "{env: b}", "{role: b, env: b}"])
RULE = st.tuples(SELECTOR, SELECTOR, st.sampled_from(["tcp", "udp", "icmp", "any"]), st.sampled_from([None, 22, 80]))
HOSTS = [f"h{i}" for i in range(5)]


def policy_text(rules, mode, modes) -> str:
    lines = [f"mode: {mode}", "groups: {ga: {role: a}, gb: {env: b}}", f"modes: {modes}", "rules:"]
    for number, (src, dst, proto, port) in enumerate(rules):
        ports = f", ports: [{port}]" if port is not None and proto in ("tcp", "udp") else ""
        lines.append(f"  - {{name: r{number}, from: {src}, to: {dst}, proto: {proto}{ports}}}")
    return "\n".join(lines) + "\n"


POLICIES = st.builds(
    policy_text,
    st.lists(RULE, max_size=6),
    st.sampled_from(["enforce", "monitor"]),
    st.sampled_from(["{}", "{ga: monitor}", "{gb: enforce}", "{ga: monitor, gb: enforce}"]),
)
EDGES = st.lists(
    st.builds(
        lambda src, dst, proto, port, flows, denied: edge(
            src, dst, port, flows=flows, proto=proto, verdict=DENIED if denied else MONITORED
        ),
        st.sampled_from(HOSTS),
        st.sampled_from(HOSTS),
        st.sampled_from(["tcp", "udp", "icmp"]),
        st.sampled_from([8, 22, 80, 443]),
        st.integers(1, 9),
        st.booleans(),
    ),
    max_size=20,
)


def naive_forwarded(text: str, src, dst, proto, port) -> tuple[bool, str]:
    """Rule by rule (Policy.naive_decide), then the destination's mode, enforce winning."""
    parsed = policy(text)
    rule = parsed.naive_decide(src, dst, proto, port)
    if rule is not None:
        return True, rule.name
    modes = {mode for name, mode in parsed.modes.items() if parsed.groups[name].matches(dst)}
    mode = "enforce" if "enforce" in modes else ("monitor" if modes else parsed.mode)
    return mode == "monitor", BY_MONITOR if mode == "monitor" else BY_DEFAULT_DENY


@settings(max_examples=150, deadline=None)
@given(POLICIES, POLICIES, EDGES, st.lists(LABEL_VALUES, min_size=5, max_size=5))
def test_the_replay_equals_a_naive_replay_edge_by_edge(running, draft, edges: list[FlowEdge], host_labels):
    labels = dict(zip(HOSTS, host_labels, strict=True))
    report = run(edges, draft=draft, running=running, labels=labels.get)
    expected: dict[str, dict[str, int]] = {"newly_denied": {}, "newly_allowed": {}, "unchanged": {}}
    for e in edges:
        now = naive_forwarded(running, labels[e.src], labels[e.dst], e.proto, e.port)
        then = naive_forwarded(draft, labels[e.src], labels[e.dst], e.proto, e.port)
        category, rule = (
            ("newly_denied", now[1])
            if now[0] and not then[0]
            else ("newly_allowed", then[1])
            if then[0] and not now[0]
            else ("unchanged", then[1])
        )
        expected[category][rule] = expected[category].get(rule, 0) + e.flows
    for category, by_rule in expected.items():
        assert {r["rule"]: r["flows"] for r in report[category]["by_rule"]} == by_rule, category


@pytest.mark.parametrize("top", [1, 3])
def test_top_limits_the_pairs_listed(top):
    edges = [edge("web1", dst, 8080, flows=n) for n, dst in enumerate(["app1", "db1", "mon1", "jump1"], 1)]
    running = DecisionIndex(policy(RUNNING))
    report = replay(edges, running, running).to_json(top=top)
    assert [t["flows"] for t in report["unchanged"]["top"]] == [4, 3, 2][:top]
