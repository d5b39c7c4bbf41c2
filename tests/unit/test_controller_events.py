"""The events the controller records for each decision, field by field (issue 18). Events are
part of segctl's interface: `segctl events`, the API and events.jsonl carry them as they are
recorded here, so a wrong kind, a missing field or the wall clock in place of the decision's
time is a wrong answer to an operator."""

import pytest

from segctl import views
from segctl.core.controller import Controller, UnknownHost
from segctl.core.flows import PacketOut
from segctl.core.pipeline import Kind, parse_cookie

from ..fakenet import ATTACHED, DB, DIRECTORY, POLICY, ROGUE, WEB, Net, arp_request, icmp, ipv4, tcp
from .helpers import directory, policy

IP = {WEB: "10.0.0.1", DB: "10.0.0.2", ROGUE: "10.0.0.9"}
ACK = 0x10


class Recorder:
    """The events recorded since it was made."""

    def __init__(self, net):
        self.net = net
        self.mark = len(self.all())

    def all(self):
        return self.net.core.events.latest(100_000)

    def new(self):
        events = self.all()[self.mark :]
        self.mark += len(events)
        return events


def at(net):
    return round(net.now, 6)


def flow(src, dst, src_port, dst_port, proto="tcp"):
    return {"src_ip": IP[src], "dst_ip": IP[dst], "proto": proto, "src_port": src_port, "dst_port": dst_port}


def syn(src, dst, sport, dport, flags=0x02):
    return tcp(src, dst, IP[src], IP[dst], sport, dport, flags=flags)


def test_authenticate_allow_and_expire_record_who_where_and_what():
    net = Net()
    rec = Recorder(net)
    net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
    assert rec.new() == [{"time": at(net), "kind": "authenticate", "host": "web", "mac": WEB, "dpid": 1, "port": 1}]
    net.send(2, 1, arp_request(DB, "10.0.0.2", "10.0.0.2"))
    rec.new()
    net.send(1, 1, syn(WEB, DB, 40000, 5432))
    (connection,) = net.core.connections
    assert connection.switches[0] == 1 and connection.switches[-1] == 2 and len(connection.switches) == 3
    expected = {
        "time": at(net),
        "kind": "allow",
        "enforced": True,
        "rule": "web-to-db",
        "switches": connection.switches,
        "src": "web",
        "dst": "db",
        "src_mac": WEB,
        "dst_mac": DB,
        **flow(WEB, DB, 40000, 5432),
    }
    assert rec.new() == [expected]
    # the cookie its entries carry: a connection entry, of web, with the connection's id
    assert parse_cookie(connection.cookie) == (Kind.CONNECTION, net.core.ledger.host_id("web"), connection.id)
    assert views.connections_view(net.core.ledger) == [
        {
            **flow(WEB, DB, 40000, 5432),
            "id": connection.id,
            "src": "web",
            "dst": "db",
            "rule": "web-to-db",
            "switches": connection.switches,
            "since": net.now,
            "monitor_only": False,
            "pipeline": "reactive",
            "cookie": f"{connection.cookie:#x}",
        }
    ]
    # idle: the ingress entry times out on the switch, the controller records the end
    net.advance(120)
    assert len(net.core.connections) == 0
    (expire,) = [e for e in rec.new() if e["kind"] == "expire"]
    assert expire == {"time": expire["time"], "kind": "expire", "src": "web", "dst": "db", **flow(WEB, DB, 40000, 5432)}
    assert net.now - 120 < expire["time"] <= net.now


def test_a_hard_timeout_ends_a_connection_too_and_foreign_cookies_are_ignored():
    net = Net()
    net.announce()
    net.send(1, 1, syn(WEB, DB, 40000, 5432))
    (connection,) = net.core.connections
    rec = Recorder(net)
    assert net.core.flow_removed(1, 0x1234, net.now, "idle_timeout") == []  # not a segctl cookie
    assert net.core.flow_removed(1, connection.cookie, net.now, "delete") == []  # segctl's own delete
    assert len(net.core.connections) == 1
    messages = net.core.flow_removed(1, connection.cookie, net.now, "hard_timeout")
    assert messages and len(net.core.connections) == 0
    assert rec.new() == [{"time": at(net), "kind": "expire", "src": "web", "dst": "db", **flow(WEB, DB, 40000, 5432)}]


def test_each_denial_records_its_reason_and_drops_at_the_ingress_port():
    net = Net()
    net.announce()
    rec = Recorder(net)
    base = {"kind": "deny", "src": "web", "src_mac": WEB, "enforced": True}

    bad = syn(WEB, DB, 40000, 22)
    net.send(1, 1, bad)
    reason = "no rule allows it (default deny)"
    assert rec.new() == [
        {**base, "time": at(net), "dst": "db", "dst_mac": DB, "reason": reason, **flow(WEB, DB, 40000, 22)}
    ]
    assert net.trace(1, 1, bad) == ("drop", 1)
    # the cached drop is exact: the same packet into another port is not taken by it
    assert net.trace(1, 2, bad) == ("controller", 1)

    to_nobody = tcp(WEB, ROGUE, "10.0.0.1", "10.0.0.9", 40001, 5432)
    net.send(1, 1, to_nobody)
    reason = f"destination MAC {ROGUE} is not a directory host"
    assert rec.new() == [{**base, "time": at(net), "dst_mac": ROGUE, "reason": reason, **flow(WEB, ROGUE, 40001, 5432)}]
    assert net.trace(1, 1, to_nobody) == ("drop", 1)

    wrong_ip = tcp(WEB, DB, "10.0.0.1", "10.0.0.9", 40002, 5432)
    net.send(1, 1, wrong_ip)
    reason = "10.0.0.9 is not the address of db"
    assert rec.new() == [
        {**base, "time": at(net), "dst": "db", "dst_mac": DB, "reason": reason, **flow(WEB, ROGUE, 40002, 5432)}
    ]
    assert net.trace(1, 1, wrong_ip) == ("drop", 1)


def test_a_denial_towards_a_quarantined_host_names_it():
    net = Net()
    net.announce()
    net.fabric.apply(net.core.quarantine("db", "EDR alert", net.now))
    rec = Recorder(net)
    packet = syn(WEB, DB, 40000, 5432)
    net.send(1, 1, packet)
    assert rec.new() == [
        {
            "time": at(net),
            "kind": "deny",
            "enforced": True,
            "src": "web",
            "dst": "db",
            "src_mac": WEB,
            "dst_mac": DB,
            "reason": "db is quarantined",
            **flow(WEB, DB, 40000, 5432),
        }
    ]
    assert net.trace(1, 1, packet) == ("drop", 1)
    assert len(net.core.connections) == 0


def test_a_server_side_syn_along_a_connection_is_denied_and_the_clients_own_syn_is_not():
    net = Net()
    net.announce()
    net.send(1, 1, syn(WEB, DB, 40000, 5432))
    rec = Recorder(net)
    # the client's SYN again, as a packet-in (sent before the entries took hold): forwarded
    again = net.send(1, 1, syn(WEB, DB, 40000, 5432))
    assert [m for m in again if isinstance(m, PacketOut)]
    assert rec.new() == []
    # the server's SYN along it: denied at its port, the connection stays
    back = syn(DB, WEB, 5432, 40000)
    net.send(2, 1, back)
    reason = "neither ACK nor RST from the server side of web's connection"
    assert rec.new() == [
        {
            "time": at(net),
            "kind": "deny",
            "enforced": True,
            "src": "db",
            "dst": "web",
            "src_mac": DB,
            "dst_mac": WEB,
            "reason": reason,
            **flow(DB, WEB, 5432, 40000),
        }
    ]
    assert net.trace(2, 1, back) == ("drop", 2)
    assert len(net.core.connections) == 1


def test_senders_that_fail_authentication_are_recorded_with_the_packet_and_the_problem():
    net = Net()
    net.announce()
    rec = Recorder(net)
    rogue = tcp(ROGUE, DB, "10.0.0.9", "10.0.0.2", 1, 5432)
    net.send(1, 3, rogue)
    assert rec.new() == [
        {
            "time": at(net),
            "kind": "deny",
            "enforced": True,
            "src_mac": ROGUE,
            "src_ip": "10.0.0.9",
            "dpid": 1,
            "port": 3,
            "reason": f"unknown MAC {ROGUE} is not in the directory",
            "problem": "unknown",
            "packet": "ipv4",
        }
    ]
    assert net.trace(1, 3, rogue) == ("drop", 1)
    # the guard is the rogue's alone: another sender at that port still reaches the controller
    assert net.trace(1, 3, tcp(DB, WEB, "10.0.0.2", "10.0.0.1", 1, 80)) == ("controller", 1)
    # an ARP whose sender MAC is not the frame's source
    net.send(1, 1, arp_request(DB, "10.0.0.2", "10.0.0.1", eth_src=WEB))
    assert rec.new() == [
        {
            "time": at(net),
            "kind": "deny",
            "enforced": True,
            "src_mac": WEB,
            "dpid": 1,
            "port": 1,
            "packet": "arp",
            "problem": "ip",
            "reason": f"ARP sender MAC {DB} differs from frame source",
        }
    ]


def test_monitor_mode_forwards_what_enforce_would_deny_and_says_so():
    net = Net("mode: monitor\nrules: []\n")
    net.announce()
    rec = Recorder(net)
    net.send(1, 1, syn(WEB, DB, 40000, 22))
    assert rec.new() == [
        {
            "time": at(net),
            "kind": "deny",
            "verdict": "monitor",
            "enforced": False,
            "would_deny": True,
            "reason": "would be denied in enforce mode (monitor mode forwards it)",
            "src": "web",
            "dst": "db",
            "src_mac": WEB,
            "dst_mac": DB,
            **flow(WEB, DB, 40000, 22),
        }
    ]
    (view,) = views.connections_view(net.core.ledger)
    assert view["monitor_only"] is True and view["rule"] is None and view["since"] == net.now
    assert net.trace(1, 1, syn(WEB, DB, 40000, 22, flags=ACK)) == ("out", *ATTACHED[DB])
    # ARP is answered in monitor mode although no rule lets web talk to db
    sent = net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.2"))
    assert [(m.dpid, m.port) for m in sent if isinstance(m, PacketOut)] == [(1, 1)]


def test_a_reply_seen_first_is_adopted_with_its_own_allow_event():
    net = Net()
    net.announce()
    rec = Recorder(net)
    reply = syn(DB, WEB, 5432, 40000, flags=ACK)
    net.send(2, 1, reply)
    (connection,) = net.core.connections
    assert rec.new() == [
        {
            "time": at(net),
            "kind": "allow",
            "enforced": True,
            "rule": "web-to-db",
            "switches": connection.switches,
            "src": "web",
            "dst": "db",
            "src_mac": WEB,
            "dst_mac": DB,
            "adopted": "reply seen first",
            **flow(WEB, DB, 40000, 5432),
        }
    ]
    assert connection.switches[0] == 1 and connection.switches[-1] == 2
    (view,) = views.connections_view(net.core.ledger)
    assert (view["src"], view["dst"], view["since"], view["monitor_only"]) == ("web", "db", net.now, False)
    assert net.trace(2, 1, reply) == ("out", *ATTACHED[WEB])


def test_no_path_to_the_destination_is_recorded():
    net = Net()
    net.announce()
    for spine in (101, 102):
        net.fabric.apply(net.core.switch_down(spine, net.now))
    rec = Recorder(net)
    sent = net.send(1, 1, syn(WEB, DB, 40000, 5432))
    assert sent == []
    assert rec.new() == [
        {
            "time": at(net),
            "kind": "deny",
            "enforced": True,
            "reason": "no path to db",
            "src": "web",
            "dst": "db",
            "src_mac": WEB,
            "dst_mac": DB,
            **flow(WEB, DB, 40000, 5432),
        }
    ]


def revoke(net, reason, rule="web-to-db", ports=(40000, 5432), proto="tcp"):
    """The record of a connection from web to db revoked now."""
    return {
        "time": at(net),
        "kind": "revoke",
        "src": "web",
        "dst": "db",
        "rule": rule,
        "reason": reason,
        **flow(WEB, DB, *ports, proto=proto),
    }


def test_quarantine_and_release_record_host_mac_reason_and_caller():
    net = Net()
    net.announce()
    net.send(1, 1, syn(WEB, DB, 40000, 5432))
    rec = Recorder(net)
    net.now += 1
    net.fabric.apply(net.core.quarantine("web", "EDR: C2 beaconing", net.now, by="soc"))
    assert rec.new() == [
        revoke(net, "web quarantined"),
        {"time": at(net), "kind": "quarantine", "host": "web", "mac": WEB, "reason": "EDR: C2 beaconing", "by": "soc"},
    ]
    assert views.quarantine_view(net.core.ledger) == [
        {"host": "web", "mac": WEB, "reason": "EDR: C2 beaconing", "since": net.now, "by": "soc"}
    ]
    net.now += 1
    net.fabric.apply(net.core.release("web", net.now, by="soc"))
    assert rec.new() == [{"time": at(net), "kind": "release", "host": "web", "mac": WEB, "by": "soc"}]
    with pytest.raises(UnknownHost, match="^web is not quarantined$"):
        net.core.release("web", net.now)
    with pytest.raises(UnknownHost, match="^no host 'nobody' in the directory, and it is not a MAC address$"):
        net.core.quarantine("nobody", "why", net.now)
    # no caller named: `by` is empty, not made up
    net.core.quarantine(DB, "test", net.now)
    assert rec.new()[-1] == {"time": at(net), "kind": "quarantine", "host": "db", "mac": DB, "reason": "test", "by": ""}
    assert views.quarantine_view(net.core.ledger)[-1]["by"] == ""
    net.core.release("db", net.now)
    assert rec.new() == [{"time": at(net), "kind": "release", "host": "db", "mac": DB, "by": ""}]


SCAN_POLICY = POLICY + "protection: {scan_quarantine: {denied: 3, seconds: 10}}\n"


def test_the_scan_detector_quarantines_a_scanner_by_its_own_denials_only():
    core = Controller(directory(DIRECTORY), policy(SCAN_POLICY))
    net = Net(core=core)
    net.announce()
    # web and app: two denials each, fewer than 3 each although 4 together
    for port in (1, 2):
        net.send(1, 1, syn(WEB, DB, 40000 + port, 22))
        net.send(2, 2, tcp("02:00:00:00:00:03", DB, "10.0.0.3", "10.0.0.2", 40000 + port, 22))
    assert net.core.quarantined == {}
    rec = Recorder(net)
    net.send(1, 1, syn(WEB, DB, 40003, 22))
    events = rec.new()
    assert events[-1] == {
        "time": at(net),
        "kind": "quarantine",
        "host": "web",
        "mac": WEB,
        "reason": "scan detector: 3 denied connections within 10 s",
        "by": "scan-detector",
    }
    assert views.quarantine_view(net.core.ledger) == [
        {
            "host": "web",
            "mac": WEB,
            "reason": "scan detector: 3 denied connections within 10 s",
            "since": net.now,
            "by": "scan-detector",
        }
    ]
    assert net.fabric.saves == 1
    net.send(2, 2, tcp("02:00:00:00:00:03", DB, "10.0.0.3", "10.0.0.2", 40003, 22))
    assert net.fabric.saves == 2 and set(net.core.quarantined) == {"web", "app"}


def test_revocations_record_why():
    net = Net()
    net.announce()
    net.send(1, 1, syn(WEB, DB, 40000, 5432))
    rec = Recorder(net)
    net.now += 1
    # the link the connection crosses goes down
    (connection,) = net.core.connections
    first, second = connection.path[0], connection.path[1]
    link = (first.dpid, first.out_port, second.dpid, second.in_port)
    net.fabric.apply(net.core.port_changed(first.dpid, first.out_port, False, net.now))
    events = rec.new()
    assert events == [
        revoke(net, "link down"),
        {"time": at(net), "kind": "link-down", "link": f"{link[0]}/{link[1]}-{link[2]}/{link[3]}", "links": 3},
    ]
    assert net.disagreements() == []

    # web's port goes down: web is unbound, its connections revoked
    net.send(1, 1, syn(WEB, DB, 40001, 5432))
    rec.new()
    net.now += 1
    net.fabric.apply(net.core.port_changed(1, 1, False, net.now))
    assert rec.new() == [
        revoke(net, "port 1/1 went down", ports=(40001, 5432)),
        {"time": at(net), "kind": "unbind", "host": "web", "reason": "port 1/1 went down"},
    ]
    assert net.disagreements() == []
    assert net.core.bindings.location(WEB) is None


def test_a_policy_reload_records_each_revocation():
    net = Net()
    net.announce()
    net.send(1, 1, syn(WEB, DB, 40000, 5432))
    net.send(1, 1, icmp(WEB, DB, "10.0.0.1", "10.0.0.2", 8))
    assert len(net.core.connections) == 2
    rec = Recorder(net)
    net.now += 1
    messages, revoked = net.core.reload(directory(DIRECTORY), policy("rules: []\n"), net.now)
    net.fabric.apply(messages)
    assert revoked == 2
    assert rec.new() == [
        revoke(net, "policy reload"),
        revoke(net, "policy reload", rule="ping-db", ports=(8, 0), proto="icmp"),
    ]
    assert net.disagreements() == []
    assert net.trace(1, 1, syn(WEB, DB, 40000, 5432, flags=ACK)) == ("controller", 1)


def test_a_directory_reload_unbinds_hosts_it_no_longer_vouches_for():
    net = Net()
    net.announce()
    net.send(1, 1, syn(WEB, DB, 40000, 5432))
    net.send(1, 1, icmp(WEB, DB, "10.0.0.1", "10.0.0.2", 8))
    rec = Recorder(net)
    net.now += 1
    only_app = """
    hosts:
      app: {mac: "02:00:00:00:00:03", ip: 10.0.0.3, labels: {role: app}, switch: 2, port: 2}
    """
    messages, revoked = net.core.reload(directory(only_app), policy(POLICY), net.now)
    net.fabric.apply(messages)
    assert revoked == 2
    assert rec.new() == [
        revoke(net, "directory changed"),
        revoke(net, "directory changed", rule="ping-db", ports=(8, 0), proto="icmp"),
        {"time": at(net), "kind": "unbind", "host": "web", "reason": "directory changed"},
        {"time": at(net), "kind": "unbind", "host": "db", "reason": "directory changed"},
    ]
    assert net.disagreements() == []


def test_truncated_and_other_protocol_packets():
    net = Net()
    net.announce()
    rec = Recorder(net)
    # an ICMP header cut off: nothing exact to match on, so nothing opens and nothing is recorded
    net.send(1, 1, ipv4(WEB, DB, "10.0.0.1", "10.0.0.2", 1, b""))
    net.send(1, 1, ipv4(WEB, DB, "10.0.0.1", "10.0.0.2", 6, b"\0" * 2))
    assert rec.new() == [] and len(net.core.connections) == 0
    # a protocol with no ports (GRE): decided on addresses and protocol, denied by default
    net.send(1, 1, ipv4(WEB, DB, "10.0.0.1", "10.0.0.2", 47, b"\0" * 8))
    assert rec.new() == [
        {
            "time": at(net),
            "kind": "deny",
            "enforced": True,
            "src": "web",
            "dst": "db",
            "src_mac": WEB,
            "dst_mac": DB,
            "reason": "no rule allows it (default deny)",
            "src_ip": "10.0.0.1",
            "dst_ip": "10.0.0.2",
            "proto": "other",
        }
    ]
