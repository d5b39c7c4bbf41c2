"""The flow map: grouping, host pairs, times, the current policy's status; its table and DOT."""

import re

from segctl.core.decision import DecisionIndex
from segctl.core.flowlog import ALLOWED, DENIED, MONITORED, labels_in
from segctl.core.flowmap import build_map, parse_by
from segctl.mapview import dot_string, map_dot, map_table

from .flowedges import flow_edge
from .helpers import directory, policy

WEB = {"role": "web", "app": "shop"}
WEB_BLOG = {"role": "web", "app": "blog"}
APP = {"role": "app", "app": "shop"}
ROGUE = "02:00:00:00:99:99"

POLICY = policy(
    """
    mode: enforce
    modes: {app-blog: monitor}
    groups:
      web: {role: web}
      shop-web: {role: web, app: shop}
      app: {role: app}
      app-blog: {role: app, app: blog}
    rules:
      - {name: shop-web-to-app, from: shop-web, to: app, proto: tcp, ports: [8080]}
    """
)


def edge(src, dst, port=8080, verdict=ALLOWED, flows=1, first=100.0, last=200.0, src_labels=WEB, dst_labels=APP):
    return flow_edge(src, dst, port, "tcp", verdict, flows, src_labels, dst_labels, first, last)


def answer(edges, by=("role",), index=None, labels_now=None, verdict=None):
    return build_map(edges, by, index, labels_now, verdict).to_json()


def labelled(body):
    """Edges by their node labels: {(from, to, proto, port): edge}."""
    label = {node["id"]: node["label"] for node in body["nodes"]}
    return {(label[e["src"]], label[e["dst"]], e["proto"], e["port"]): e for e in body["edges"]}


def test_hosts_sharing_the_label_values_are_one_node_and_strangers_are_their_own():
    edges = [
        edge("web1", "app1", flows=3, first=50, last=60),
        edge("web2", "app1", flows=4, first=10, last=300),
        edge("web1", "app1", verdict=MONITORED, flows=2, first=70, last=80),
        edge(ROGUE, "app1", verdict=DENIED, flows=5, src_labels=None),
    ]
    body = answer(edges)
    assert [(n["label"], n["known"], n["hosts"]) for n in body["nodes"]] == [
        ("role=app", True, ["app1"]),
        ("role=web", True, ["web1", "web2"]),
        (ROGUE, False, [ROGUE]),
    ]
    found = labelled(body)
    web_app = found[("role=web", "role=app", "tcp", 8080)]
    assert (web_app["flows"], web_app["pairs"]) == (9, 2)  # web1 and web2 to app1: two host pairs
    assert (web_app["first_seen"], web_app["last_seen"]) == (10, 300)
    assert web_app["observed"] == {"allowed": 7, "monitored": 2, "denied": 0}
    assert web_app["policy"] is None  # no policy given: no status
    assert found[(ROGUE, "role=app", "tcp", 8080)]["observed"]["denied"] == 5


def test_grouping_by_two_keys_splits_what_one_key_joins_and_a_missing_key_shows_as_dash():
    edges = [edge("web1", "app1"), edge("web3", "app1", src_labels=WEB_BLOG), edge("x", "app1", src_labels={})]
    assert len(answer(edges, by=("role",))["nodes"]) == 3  # app, web, and role=- for x
    assert [n["label"] for n in answer(edges, by=("role", "app"))["nodes"]] == [
        "role=-,app=-",
        "role=app,app=shop",
        "role=web,app=blog",
        "role=web,app=shop",
    ]


def test_policy_status_per_host_pair_allow_monitor_deny_and_mixed():
    index = DecisionIndex(POLICY)
    blog_app = {"role": "app", "app": "blog"}
    edges = [
        edge("web1", "app1"),  # shop web -> app 8080: allowed by the rule
        edge("web3", "app1", src_labels=WEB_BLOG),  # blog web: no rule, app1 is enforced: deny
        edge("web1", "app2", dst_labels=blog_app),  # app-blog is in monitor mode... but the rule allows it
        edge("web3", "app2", src_labels=WEB_BLOG, dst_labels=blog_app),  # no rule, monitored: monitor
        edge(ROGUE, "app1", verdict=DENIED, src_labels=None),  # not in the directory: deny
    ]
    found = labelled(answer(edges, index=index))
    assert found[("role=web", "role=app", "tcp", 8080)]["policy"] == {
        "allow": 2,
        "monitor": 1,
        "deny": 1,
        "status": "mixed",
    }
    assert found[(ROGUE, "role=app", "tcp", 8080)]["policy"]["status"] == "deny"
    by_app = labelled(answer(edges, by=("role", "app"), index=index))
    assert by_app[("role=web,app=shop", "role=app,app=shop", "tcp", 8080)]["policy"]["status"] == "allow"
    assert by_app[("role=web,app=blog", "role=app,app=blog", "tcp", 8080)]["policy"]["status"] == "monitor"
    assert by_app[("role=web,app=blog", "role=app,app=shop", "tcp", 8080)]["policy"]["status"] == "deny"


def test_current_directory_labels_win_over_recorded_ones():
    now = directory(
        """
        hosts:
          web1: {mac: "02:00:00:00:01:01", labels: {role: frontend}}
          app1: {mac: "02:00:00:00:02:01", labels: {role: app}}
        """
    )
    body = answer([edge("web1", "app1")], labels_now=labels_in(now))
    assert [n["label"] for n in body["nodes"]] == ["role=app", "role=frontend"]


def test_verdict_filter_and_deterministic_order():
    edges = [
        edge("web1", "app1", port=443, verdict=DENIED),
        edge("web1", "app1", port=80),
        edge("app1", "web1", port=22, src_labels=APP, dst_labels=WEB),
    ]
    body = answer(edges)
    assert body == answer(list(reversed(edges)))
    assert [(e["src"], e["dst"], e["port"]) for e in body["edges"]] == [
        ("n1", "n2", 22),
        ("n2", "n1", 80),
        ("n2", "n1", 443),
    ]
    assert [e["port"] for e in answer(edges, verdict=DENIED)["edges"]] == [443]


def test_parse_by_keeps_each_key_once_and_refuses_empty_keys():
    assert parse_by(" role , app,role,") == ("role", "app")
    for bad in ("", " , ", ",\t"):
        try:
            parse_by(bad)
        except ValueError as exc:
            assert "label keys like role" in str(exc)
        else:
            raise AssertionError(bad)


# A value as a user could write it: a quote, a backslash, a newline that would start a statement,
# a Graphviz escape (\N, the node's name).
AWKWARD = 'we"b\\N\n"; evil -> x [label="pwned"]; //'
DOT_STRING = r'"(?:[^"\\\n]|\\.)*"'
DOT_STATEMENT = re.compile(rf"^  {DOT_STRING}( -> {DOT_STRING})? \[label={DOT_STRING}(, [a-z]+=[a-z]+)?\];$")


def rendered(quoted: str) -> list[str]:
    """The lines Graphviz draws for a quoted label: `\\"` is a quote, `\\\\` a backslash, `\\n` a
    line break; any other backslash escape would be a Graphviz command (`\\N`: the node's name)."""
    lines, text, chars = [], "", iter(quoted[1:-1])
    for char in chars:
        if char == "\\":
            char = next(chars)
            assert char in '"\\n', f"unescaped Graphviz command \\{char} in {quoted}"
            if char == "n":
                lines.append(text)
                text = ""
                continue
        text += char
    return [*lines, text]


def test_dot_keeps_every_user_value_inside_its_quoted_string():
    edges = [edge("web\n1", "app1", src_labels={"role": AWKWARD}), edge(ROGUE, "app1", src_labels=None)]
    text = map_dot(answer(edges, index=DecisionIndex(POLICY)))
    lines = text.splitlines()
    assert lines[:3] == ["digraph segctl_map {", "  rankdir=LR;", "  node [shape=box];"] and lines[-1] == "}"
    assert len(lines) == 3 + 3 + 2 + 1  # header, 3 nodes, 2 edges, closing brace: nothing injected
    for line in lines[3:-1]:
        assert DOT_STATEMENT.match(line), line
    label = re.search(rf"label=({DOT_STRING})", lines[4]).group(1)
    # Drawn as Graphviz would: the value as written (its newline shown as \n), then the host count.
    assert rendered(label) == ['role=we"b\\N\\n"; evil -> x [label="pwned"]; //', "1 host(s)"]
    for line in lines[3:-1]:
        for quoted in re.findall(DOT_STRING, line):
            rendered(quoted)


def test_dot_string_escapes_quotes_backslashes_and_control_characters():
    assert dot_string('a"b') == r'"a\"b"'
    assert dot_string("a\\b") == r'"a\\b"'
    assert dot_string("a\nb", "second") == r'"a\\nb\nsecond"'  # the value's newline shown, the line break kept


def test_table_has_one_row_per_edge_with_status():
    edges = [
        edge("web1", "app1"),
        edge("web3", "app1", src_labels=WEB_BLOG),
        edge("w\n", "app1", src_labels={"role": AWKWARD}),
    ]
    text = map_table(answer(edges, index=DecisionIndex(POLICY)))
    lines = text.splitlines()
    assert len(lines) == 1 + 2 + 1  # header, two edges, the count line
    assert lines[0].split()[:3] == ["FROM", "TO", "SERVICE"]
    assert "mixed (allow 1, deny 1)" in text and "1970-01-01T00:03:20Z" in text
    assert lines[-1] == "3 node(s), 2 edge(s)"
