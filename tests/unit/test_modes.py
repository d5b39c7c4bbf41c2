"""Enforcement rolled out group by group: `modes:` in the policy (issue 10, part 5). A
connection's mode is its destination's; enforce wins where a host's groups disagree."""

from segctl.core.decision import DecisionIndex
from segctl.core.flows import PacketOut

from ..fakenet import APP, ATTACHED, DB, DIRECTORY, WEB, Net, arp_request, tcp
from .helpers import directory, policy

IP = {WEB: "10.0.0.1", DB: "10.0.0.2", APP: "10.0.0.3"}
GROUPS = (
    "groups:\n  web: {role: web}\n  db: {role: db}\n  app: {role: app}\n  prod: {env: prod}\n  stores: {role: db}\n"
)
RULES = "rules:\n  - {name: web-to-db, from: web, to: db, proto: tcp, ports: [5432]}\n"
DB_MONITORED = "mode: enforce\nmodes: {db: monitor}\n" + GROUPS + RULES


def syn(src, dst, sport, dport):
    return tcp(src, dst, IP[src], IP[dst], sport, dport)


def decisions(net):
    return [e for e in net.core.events.latest(1000) if e["kind"] in ("allow", "deny")]


def test_a_monitored_group_forwards_and_says_would_deny_while_the_others_stay_enforced():
    net = Net(DB_MONITORED)
    net.announce()
    net.send(1, 1, syn(WEB, DB, 40000, 22))  # no rule: db is monitored, forwarded
    net.send(2, 2, syn(APP, WEB, 40001, 80))  # no rule: web is enforced, denied
    net.send(1, 1, syn(WEB, DB, 40002, 5432))  # a rule: allowed, but not enforced (db monitored)
    monitored, denied, allowed = decisions(net)
    assert (monitored["kind"], monitored["verdict"], monitored["enforced"], monitored["would_deny"]) == (
        "deny",
        "monitor",
        False,
        True,
    )
    assert (denied["kind"], denied["enforced"], "would_deny" in denied) == ("deny", True, False)
    assert (allowed["kind"], allowed["rule"], allowed["enforced"]) == ("allow", "web-to-db", False)
    assert net.trace(1, 1, syn(WEB, DB, 40000, 22)) == ("out", *ATTACHED[DB])
    assert net.trace(2, 2, syn(APP, WEB, 40001, 80)) == ("drop", 2)
    assert {(c.key.dst_port, c.monitor_only) for c in net.core.connections} == {(22, True), (5432, False)}


def test_enforce_wins_when_a_hosts_groups_disagree():
    index = DecisionIndex(policy("modes: {db: monitor, prod: enforce}\n" + GROUPS + RULES))
    assert index.mode_of({"role": "db", "env": "prod"}) == "enforce"
    assert index.mode_of({"role": "db", "env": "dev"}) == "monitor"
    only_db = DecisionIndex(policy("mode: enforce\nmodes: {db: monitor}\n" + GROUPS + RULES))
    assert only_db.mode_of({"role": "db"}) == "monitor" and only_db.mode_of({"role": "web"}) == "enforce"
    # the global mode is the default of every group not listed
    listed = DecisionIndex(policy("mode: monitor\nmodes: {db: enforce}\n" + GROUPS + RULES))
    assert listed.mode_of({"role": "db"}) == "enforce" and listed.mode_of({"role": "app"}) == "monitor"
    net = Net("mode: monitor\nmodes: {db: monitor, stores: enforce}\n" + GROUPS + RULES)
    net.announce()
    net.send(1, 1, syn(WEB, DB, 40000, 22))
    assert net.trace(1, 1, syn(WEB, DB, 40000, 22)) == ("drop", 1)


def test_moving_a_group_from_monitor_to_enforce_revokes_exactly_the_now_denied_connections_to_it():
    net = Net("mode: enforce\nmodes: {db: monitor, app: monitor}\n" + GROUPS + RULES)
    net.announce()
    net.send(1, 1, syn(WEB, DB, 40000, 22))  # monitor-only, to db: goes
    net.send(1, 1, syn(WEB, DB, 40001, 5432))  # a rule allows it: stays
    net.send(1, 1, syn(WEB, APP, 40002, 8080))  # monitor-only, to app, still monitored: stays
    assert len(net.core.connections) == 3
    enforce_db = "mode: enforce\nmodes: {app: monitor}\n" + GROUPS + RULES
    messages, revoked = net.core.reload(directory(DIRECTORY), policy(enforce_db), net.now)
    net.fabric.apply(messages)
    assert revoked == 1
    assert sorted((c.key.dst_port, c.monitor_only) for c in net.core.connections) == [(5432, False), (8080, True)]
    assert net.trace(1, 1, syn(WEB, DB, 40000, 22)) == ("controller", 1)  # decided afresh: denied now
    net.send(1, 1, syn(WEB, DB, 40000, 22))
    assert net.trace(1, 1, syn(WEB, DB, 40000, 22)) == ("drop", 1) and net.disagreements() == []


def test_a_monitored_host_resolves_and_is_resolved_by_anyone_and_others_only_by_rule():
    net = Net("mode: enforce\nmodes: {db: monitor}\n" + GROUPS + "rules: []\n")
    net.announce()

    def answered(dpid, port, mac, ip, target):
        sent = net.send(dpid, port, arp_request(mac, ip, target))
        return [(m.dpid, m.port) for m in sent if isinstance(m, PacketOut)] == [(dpid, port)]

    assert answered(1, 1, WEB, "10.0.0.1", "10.0.0.2")  # web asks for db (monitored)
    assert answered(2, 1, DB, "10.0.0.2", "10.0.0.1")  # db asks for web, to answer web's connections
    assert not answered(1, 1, WEB, "10.0.0.1", "10.0.0.3")  # web asks for app: no rule, enforced


def test_modes_name_defined_groups_only():
    import pytest

    from segctl.core.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        policy("modes: {nosuch: monitor, db: strict}\ngroups: {db: {role: db}}\nrules: []\n")
    assert [str(p) for p in exc.value.problems] == [
        "policy.yaml:1: modes: db 'strict' is not one of enforce, monitor",
        "policy.yaml:1: modes: unknown group 'nosuch' (modes name groups defined under 'groups')",
    ]
