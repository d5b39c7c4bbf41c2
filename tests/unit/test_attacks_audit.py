"""Attacks on the flow-table audit, at unit level: the fake switch made to report entries the
way Open vSwitch 3.1 reports them (checked against a real bridge: attack/probe_roundtrip.py)."""

import dataclasses
import struct

from segctl import ofmsg
from segctl.core.pipeline import FRAGMENTS

from ..fakenet import DB, SWITCHES, WEB, Net
from .test_audit import drift
from .test_controller_events import Recorder
from .test_holes import UDP_POLICY, fragments

DPIDS = [dpid for dpid, _ in SWITCHES]


def as_ovs_reports(entry):
    """Open vSwitch reports a mask covering all of ip_frag's bits (3/3) as an exact match."""
    match = tuple((name, 3 if (name, value) == ("ip_frag", (3, 3)) else value) for name, value in entry.match)
    return dataclasses.replace(entry, match=match)


def test_segctls_own_fragment_entries_survive_an_audit_as_open_vswitch_reports_them(monkeypatch):
    """OVS reports ip_frag=(3,3) as ip_frag=3: the audit deleted every fragment entry segctl wrote."""
    net = Net(UDP_POLICY)
    net.announce()
    first, *later = fragments(WEB, DB, "10.0.0.1", "10.0.0.2", 17, struct.pack("!HHHH", 40000, 5353, 3008, 0))
    net.send(1, 1, first)
    net.send(1, 1, later[0])
    assert net.fabric.entries_of(FRAGMENTS)
    real = ofmsg.encode_flow_stats_reply
    monkeypatch.setattr(
        ofmsg, "encode_flow_stats_reply", lambda entries, *a, **k: real([as_ovs_reports(e) for e in entries], *a, **k)
    )
    rec = Recorder(net)
    for dpid in DPIDS:
        net.audit(dpid)
    assert drift(rec.new()) == []
    assert net.fabric.entries_of(FRAGMENTS)


def test_a_stale_finding_does_not_delete_a_newer_connections_entry_with_the_same_match():
    """The audit's strict delete ignored the cookie: an entry of an ended connection, read just
    before it ended, took the next connection's identical entry with it."""
    from segctl.core.flows import EntryDelete

    from ..fakenet import APP, icmp_echo

    net = Net()
    net.announce()
    echo = icmp_echo(APP, DB, "10.0.0.3", "10.0.0.2")
    net.send(2, 2, echo)  # connection D: app1 pings db1 (both on switch 2)
    assert net.trace(2, 2, echo)[0] == "out"
    net.fabric.apply(net.core.auditor.begin(2, net.now))
    snapshot = net.fabric.table(2).flow_stats()  # the switch answers at once; the audit reads it a little later
    net.advance(11)  # D idles out (icmp: 10 s)...
    net.send(2, 2, echo)  # ...and the next ping opens E, whose entries match exactly what D's did
    assert net.trace(2, 2, echo)[0] == "out"
    sent = []
    for part in snapshot:
        _, entries = ofmsg.decode_flow_stats(part)
        sent += net.fabric.apply(net.core.audit_observe(2, entries, net.now))
    sent += net.fabric.apply(net.core.audit_finish(2, net.now))
    assert [m for m in sent if isinstance(m, EntryDelete)], "the audit found nothing stale: the test sees nothing"
    assert net.trace(2, 2, echo)[0] == "out", "E's entry was deleted by a finding about D"
