"""The decision index's answers beyond first_rule: the rules between two hosts (ARP and `segctl
explain` use them), whether two hosts may resolve each other, and explain()'s verdict and text,
which `segctl explain` prints."""

from segctl.core.decision import DecisionIndex, Verdict

from .helpers import policy

WEB, DB, OPS, OTHER = {"role": "web"}, {"role": "db"}, {"role": "ops"}, {"role": "x"}

POLICY = """
rules:
  - {name: sql, from: {role: web}, to: {role: db}, proto: tcp, ports: [5432]}
  - {name: ops-any, from: {role: ops}, to: any, proto: any}
  - {name: dns, from: {role: web}, to: {role: db}, proto: udp, ports: ["53-54"]}
  - {name: to-web, from: any, to: {role: web}, proto: tcp, ports: [443]}
  - {name: stamp, from: {role: web}, to: {role: db}, proto: icmp, icmp_types: [timestamp-request]}
"""


def index() -> DecisionIndex:
    return DecisionIndex(policy(POLICY))


def names(rules) -> list[str]:
    return [rule.name for rule in rules]


def test_peers_are_the_rules_from_the_source_to_the_destination_in_file_order():
    ix = index()
    assert names(ix.peers(WEB, DB)) == ["sql", "dns", "stamp"]
    assert names(ix.peers(DB, WEB)) == ["to-web"]
    assert names(ix.peers(OPS, WEB)) == ["ops-any", "to-web"]
    assert names(ix.peers(OPS, OPS)) == ["ops-any"]
    assert names(ix.peers(WEB, OTHER)) == []  # web may send by sql, dns, stamp; x receives by none
    assert names(ix.peers(OTHER, DB)) == []  # db receives by sql, dns, stamp, ops-any; x sends by none
    assert names(ix.peers(OTHER, WEB)) == ["to-web"]


def test_may_talk_is_any_rule_in_either_direction():
    ix = index()
    assert ix.may_talk(WEB, DB) and ix.may_talk(DB, WEB)  # web -> db
    assert ix.may_talk(OTHER, WEB) and ix.may_talk(WEB, OTHER)  # to-web, from anyone
    assert ix.may_talk(OPS, OTHER) and ix.may_talk(OTHER, OPS)
    assert not ix.may_talk(DB, OTHER) and not ix.may_talk(OTHER, DB)
    assert not ix.may_talk(DB, DB)


def test_an_allowed_flow_is_explained_by_its_rule():
    ix = index()
    verdict = ix.explain(WEB, DB, "tcp", 5432)
    assert verdict == Verdict(True, ix.rules[0], "rule sql: {role: web} -> {role: db} tcp ports 5432 (policy.yaml:3)")
    verdict = ix.explain(WEB, DB, "icmp", 13)
    assert verdict == Verdict(True, ix.rules[4], "rule stamp: {role: web} -> {role: db} icmp types 13 (policy.yaml:7)")


def test_a_denied_flow_lists_the_rules_between_the_hosts():
    ix = index()
    between = (
        "sql: {role: web} -> {role: db} tcp ports 5432 (policy.yaml:3); "
        "dns: {role: web} -> {role: db} udp ports 53-54 (policy.yaml:5); "
        "stamp: {role: web} -> {role: db} icmp types 13 (policy.yaml:7)"
    )
    assert ix.explain(WEB, DB, "tcp", 22) == Verdict(
        False, None, f"default deny: no rule allows tcp/22; rules between these hosts allow only: {between}"
    )
    assert ix.explain(WEB, DB, "udp", 55).reason == (
        f"default deny: no rule allows udp/55; rules between these hosts allow only: {between}"
    )
    assert ix.explain(WEB, DB, "icmp", 8).reason == (
        f"default deny: no rule allows icmp type 8; rules between these hosts allow only: {between}"
    )
    assert ix.explain(WEB, DB, "other", None).reason == (
        f"default deny: no rule allows other; rules between these hosts allow only: {between}"
    )


def test_a_denied_flow_between_hosts_no_rule_connects():
    verdict = index().explain(DB, OTHER, "tcp", 443)
    assert verdict == Verdict(
        False, None, "default deny: no rule lets the source's group reach the destination's group"
    )
    assert verdict.allowed is False
