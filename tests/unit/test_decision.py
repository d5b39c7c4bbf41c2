"""The compiled decision index against a naive rule-by-rule evaluation."""

from hypothesis import given, settings
from hypothesis import strategies as st

from segctl.core.decision import DecisionIndex
from segctl.core.policy import ANY, Policy, Rule, Selector

from .helpers import policy

KEYS = ["role", "env", "app"]
VALUES = ["a", "b", "c"]

labels = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)
selectors = st.one_of(
    st.just(ANY),
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), min_size=1, max_size=2).map(
        lambda d: Selector(frozenset(d.items()))
    ),
)
port_ranges = st.lists(
    st.tuples(st.integers(1, 200), st.integers(0, 30)).map(lambda t: (t[0], t[0] + t[1])),
    min_size=1,
    max_size=3,
).map(lambda r: tuple(sorted(set(r))))


@st.composite
def rules(draw):
    count = draw(st.integers(0, 12))
    out = []
    for index in range(count):
        proto = draw(st.sampled_from(["tcp", "udp", "icmp", "any"]))
        ports = draw(st.one_of(st.none(), port_ranges)) if proto in ("tcp", "udp") else None
        out.append(
            Rule(
                name=f"r{index}",
                index=index,
                src=draw(selectors),
                dst=draw(selectors),
                src_text="",
                dst_text="",
                proto=proto,
                ports=ports,
                file="p",
                line=index + 1,
            )
        )
    return Policy(mode="enforce", groups={}, rules=tuple(out), sources=("p",))


@settings(max_examples=400, deadline=None)
@given(
    rules(),
    st.lists(
        st.tuples(labels, labels, st.sampled_from(["tcp", "udp", "icmp", "other"]), st.integers(0, 240)),
        min_size=1,
        max_size=20,
    ),
)
def test_compiled_decision_equals_naive_evaluation(p, flows):
    index = DecisionIndex(p)
    for src, dst, proto, port in flows:
        port = port if proto in ("tcp", "udp") else None
        assert index.first_rule(src, dst, proto, port) == p.naive_decide(src, dst, proto, port)


def test_first_matching_rule_in_file_order_wins_and_explanations_say_why():
    p = policy("""
        rules:
          - {name: narrow, from: {role: web}, to: {role: db}, proto: tcp, ports: [5432]}
          - {name: broad, from: any, to: {role: db}, proto: tcp, ports: ["5000-6000"]}
          - {name: ping, from: any, to: any, proto: icmp}
    """)
    index = DecisionIndex(p)
    web, db, other = {"role": "web"}, {"role": "db"}, {"role": "x"}
    assert index.first_rule(web, db, "tcp", 5432).name == "narrow"
    assert index.first_rule(other, db, "tcp", 5432).name == "broad"
    assert index.first_rule(web, db, "tcp", 6001) is None
    assert index.first_rule(web, db, "udp", 5432) is None
    assert index.first_rule(db, web, "icmp", 8).name == "ping"
    assert index.first_rule(db, web, "icmp", 5) is None  # a redirect: no rule names it
    assert index.first_rule(db, web, "other", None) is None
    assert index.may_talk(web, db) and index.may_talk(db, web)
    verdict = index.explain(web, db, "tcp", 22)
    assert not verdict.allowed and "narrow" in verdict.reason and "tcp/22" in verdict.reason
    assert index.explain(web, db, "tcp", 5432).allowed


def test_a_port_table_boundary_is_exact():
    p = policy("""
        rules:
          - {name: r, from: any, to: any, proto: tcp, ports: ["100-200", 65535]}
    """)
    index = DecisionIndex(p)
    hits = [port for port in (1, 99, 100, 150, 200, 201, 65534, 65535) if index.first_rule({}, {}, "tcp", port)]
    assert hits == [100, 150, 200, 65535]


def test_a_rule_allows_its_own_protocol_only_and_any_allows_every_one():
    p = policy("""
        rules:
          - {name: sql, from: {role: web}, to: {role: db}, proto: tcp, ports: [5432]}
          - {name: dns, from: {role: web}, to: {role: db}, proto: udp, ports: [53]}
          - {name: all, from: {role: ops}, to: {role: db}, proto: any}
    """)
    index = DecisionIndex(p)
    web, ops, db = {"role": "web"}, {"role": "ops"}, {"role": "db"}
    assert [index.first_rule(web, db, proto, 5432) for proto in ("udp", "icmp", "other")] == [None] * 3
    assert [index.first_rule(web, db, proto, 53) for proto in ("tcp", "icmp", "other")] == [None] * 3
    assert index.first_rule(web, db, "tcp", 5432).name == "sql" and index.first_rule(web, db, "udp", 53).name == "dns"
    for proto, port in (("tcp", 1), ("udp", 65535), ("icmp", 8), ("other", None)):
        assert index.first_rule(ops, db, proto, port).name == "all", proto
    assert index.first_rule(ops, db, "icmp", 5) is None  # even `any` allows only echo of ICMP
