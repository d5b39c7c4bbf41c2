"""The flow-table audit (issue 9): what the switches hold is held against what segctl put there.
Driven through segctl's own flow-stats decoder, on the fake fabric."""

import dataclasses
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from segctl import ofmsg
from segctl.core.connections import ConnectionTable
from segctl.core.flows import EntryDelete, FlowAdd, FlowStatsRequest, match_of
from segctl.core.pipeline import (
    FRAGMENTS,
    PRIORITY_QUARANTINE,
    QUARANTINE,
    SERVER_DROP,
    Kind,
    make_cookie,
    parse_cookie,
)

from ..fakenet import APP, DB, SWITCHES, WEB, Net, icmp_echo, tcp
from .test_controller_events import Recorder
from .test_holes import UDP_POLICY, fragments

DPIDS = [dpid for dpid, _ in SWITCHES]
FOREIGN_NORMAL = FlowAdd(1, 65000, (), (("output", 2),), 0)  # an earlier controller's leftover


def drift(events: list[dict]) -> list[dict]:
    return [e for e in events if e["kind"] == "drift"]


def busy_net() -> Net:
    net = Net()
    net.announce()
    net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432))  # allowed, tcp
    net.send(2, 2, icmp_echo(APP, DB, "10.0.0.3", "10.0.0.2"))  # allowed, icmp
    net.send(1, 1, tcp(WEB, APP, "10.0.0.1", "10.0.0.3", 40001, 22))  # denied
    return net


def test_an_audit_of_what_segctl_wrote_finds_nothing_and_changes_nothing():
    net = busy_net()
    before = {dpid: sorted(map(repr, net.fabric.entries(dpid))) for dpid in DPIDS}
    rec = Recorder(net)
    for dpid in DPIDS:
        sent = net.audit(dpid, per_part=3)
        assert sent == [FlowStatsRequest(dpid)]
    assert drift(rec.new()) == []
    assert {dpid: sorted(map(repr, net.fabric.entries(dpid))) for dpid in DPIDS} == before
    view = net.core.auditor.view()
    assert [s["dpid"] for s in view["switches"]] == DPIDS and view["drift_findings"] == 0
    assert [s["entries"] for s in view["switches"]] == [len(before[dpid]) for dpid in DPIDS]


def test_a_foreign_entry_is_deleted_and_what_it_forwarded_is_dropped_again():
    net = busy_net()
    denied = tcp(WEB, APP, "10.0.0.1", "10.0.0.3", 40002, 22)
    assert net.trace(1, 1, denied)[0] == "controller"  # to be decided (and denied)
    net.fabric.table(1).add_by_hand(FOREIGN_NORMAL)
    assert net.trace(1, 1, denied) == ("out", 1, 2)  # the leftover forwards around the policy
    rec = Recorder(net)
    sent = net.audit(1)
    (delete,) = [m for m in sent if isinstance(m, EntryDelete)]
    assert (delete.dpid, delete.table_id, delete.priority) == (1, 0, 65000)
    assert net.trace(1, 1, denied)[0] == "controller"
    (event,) = drift(rec.new())
    assert event["dpid"] == 1 and event["action"] == "deleted: not written by segctl"
    assert event["entry"] == "priority=65000 cookie=0x0 match=* actions=output:2"
    assert net.core.auditor.view()["drift_findings"] == 1


def test_a_quarantine_drop_deleted_by_hand_comes_back():
    net = busy_net()
    net.fabric.apply(net.core.quarantine("web", "test", net.now))
    table = net.fabric.table(2)
    table.entries = [
        e for e in table.entries if e.priority != PRIORITY_QUARANTINE or e.match_dict() != {"eth_dst": WEB}
    ]
    rec = Recorder(net)
    sent = net.audit(2)
    assert [m for m in sent if isinstance(m, FlowAdd)] == [
        FlowAdd(2, PRIORITY_QUARANTINE, match_of(eth_dst=WEB), (), make_cookie(Kind.QUARANTINE, 1))
    ]
    assert {e.match for e in net.fabric.entries_of(QUARANTINE, dpid=2)} == {
        match_of(eth_src=WEB),
        match_of(eth_dst=WEB),
    }
    assert [e["action"] for e in drift(rec.new())] == ["reinstalled: missing"]


def test_entries_of_connections_segctl_no_longer_knows_or_never_wrote_go():
    net = busy_net()
    web_db = next(c for c in net.core.connections if c.dst.name == "db" and c.src.name == "web")
    net.core.ledger.connections.remove(web_db.id)  # forgotten, its entries left behind
    (ingress,) = [e for e in net.fabric.entries(1) if e.cookie == web_db.cookie and e.match_dict().get("in_port") == 1]
    # and an entry forged with a live connection's cookie that matches far more than it does
    live = next(iter(net.core.connections))
    at = live.path[0]
    forged = FlowAdd(at.dpid, 20000, match_of(in_port=at.in_port), (("output", at.out_port),), live.cookie)
    net.fabric.table(at.dpid).add_by_hand(forged)
    rec = Recorder(net)
    for dpid in DPIDS:
        net.audit(dpid)
    assert ingress not in net.fabric.entries(1) and forged not in net.fabric.entries()
    assert not [e for e in net.fabric.entries() if parse_cookie(e.cookie)[2] == web_db.id]
    actions = {e["action"] for e in drift(rec.new())}
    assert "deleted: an entry of a connection segctl no longer knows" in actions
    assert f"deleted: not an entry of connection {live.id} (app to db)" in actions
    assert live.cookie in {e.cookie for e in net.fabric.entries()}  # its own entries stay


def test_entries_in_other_tables_go_and_a_missing_server_side_drop_comes_back():
    net = busy_net()
    (drop,) = net.fabric.entries_of(SERVER_DROP)
    table = net.fabric.table(drop.dpid)
    table.add_by_hand(FOREIGN_NORMAL, table_id=3)
    table.entries.remove(drop)
    rec = Recorder(net)
    sent = net.audit(drop.dpid)
    assert drop in sent and drop in net.fabric.entries(drop.dpid) and table.other_tables == []
    assert [m.table_id for m in sent if isinstance(m, EntryDelete)] == [3]
    assert sorted(e["action"] for e in drift(rec.new())) == [
        "deleted: segctl writes nothing in table 3",
        "reinstalled: missing",
    ]


def test_a_connection_opened_after_the_read_was_answered_is_not_missing_from_the_answer():
    net = busy_net()
    (drop,) = net.fabric.entries_of(SERVER_DROP)
    rec = Recorder(net)
    net.fabric.apply(net.core.auditor.begin(drop.dpid, net.now))
    answer = list(net.fabric.table(drop.dpid).flow_stats(50))  # the switch answers the read at once
    net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40009, 5432))  # then a connection to the same server
    assert len(net.fabric.entries_of(SERVER_DROP, dpid=drop.dpid)) == 2
    sent = []
    for part in answer:
        _, entries = ofmsg.decode_flow_stats(part)
        sent += net.fabric.apply(net.core.audit_observe(drop.dpid, entries, net.now))
    sent += net.fabric.apply(net.core.audit_finish(drop.dpid, net.now))
    assert sent == [] and drift(rec.new()) == []  # its drop was not in the answer, and is not missing
    net.fabric.table(drop.dpid).entries.remove(drop)
    assert drop in net.audit(drop.dpid)  # the older connection's, taken away, comes back


def test_an_audit_never_walks_every_connection(monkeypatch):
    """Reading one switch costs what that switch holds, not what the whole network does: its
    server-side drops are found through the connections of its own servers."""
    net = busy_net()
    for port in range(41000, 41050):
        net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", port, 5432))

    def walk(_table):
        raise AssertionError("the audit walked every connection")

    monkeypatch.setattr(ConnectionTable, "__iter__", walk)
    drops = net.fabric.entries_of(SERVER_DROP)
    assert len(drops) == 51
    net.fabric.table(drops[7].dpid).entries.remove(drops[7])
    rec = Recorder(net)
    for dpid in DPIDS:
        net.audit(dpid)
    assert drops[7] in net.fabric.entries() and [e["action"] for e in drift(rec.new())] == ["reinstalled: missing"]


def test_reads_are_spread_over_the_interval_one_switch_at_a_time():
    net = Net()
    auditor = net.core.auditor
    reads = []
    for tick in range(0, 61):
        reads += [(tick, m.dpid) for m in net.core.audit_due(net.now + tick)]
    # 4 switches every 30 s: one read every 7.5 s, each switch in turn, each twice a minute
    assert [t for t, _ in reads] == [0, 8, 15, 23, 30, 38, 45, 53, 60]
    assert sorted(d for _, d in reads[:4]) == sorted(DPIDS) and reads[4][1] == reads[0][1]
    auditor.interval = 0
    assert net.core.audit_due(net.now + 1000) == []


@settings(max_examples=30)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([(1, 1, WEB, "10.0.0.1"), (2, 2, APP, "10.0.0.3"), (2, 1, DB, "10.0.0.2")]),
            st.sampled_from([(DB, "10.0.0.2"), (APP, "10.0.0.3"), (WEB, "10.0.0.1")]),
            st.sampled_from([22, 5432, 8080]),
            st.booleans(),
        ),
        max_size=12,
    ),
    st.integers(1, 7),
)
def test_no_traffic_makes_the_audit_find_drift(sent, per_part):
    net = Net()
    net.announce()
    for n, ((dpid, port, mac, ip), (dst_mac, dst_ip), service, reply) in enumerate(sent):
        if mac == dst_mac:
            continue
        if reply:  # the server side answering (or probing): ACK from the service port
            net.send(dpid, port, tcp(mac, dst_mac, ip, dst_ip, service, 40000 + n, flags=0x10))
        else:
            net.send(dpid, port, tcp(mac, dst_mac, ip, dst_ip, 40000 + n, service))
    rec = Recorder(net)
    for dpid in DPIDS:
        net.audit(dpid, per_part)
    assert drift(rec.new()) == []


def test_the_view_keeps_the_last_drift_after_a_clean_audit():
    net = busy_net()
    net.fabric.table(1).add_by_hand(FOREIGN_NORMAL)
    net.audit(1)
    net.audit(1)
    (switch,) = net.core.auditor.view()["switches"]
    assert switch["findings"] == 0 and switch["last_drift"]["findings"] == 1
    assert switch["last_drift"]["examples"] == [
        {"entry": "priority=65000 cookie=0x0 match=* actions=output:2", "action": "deleted: not written by segctl"}
    ]


def test_a_connection_entry_copied_to_another_switch_or_a_lasting_flood_drop_goes():
    """Entries that pass for segctl's anywhere but where segctl put them: an entry of a live
    connection copied onto a switch its path does not cross there, and a flood drop on a port
    that is not flooding (or longer than the policy's hold) would cut a port off at will."""
    net = busy_net()
    connection = next(c for c in net.core.connections if c.src.name == "web")
    copied = next(e for e in net.fabric.entries(connection.path[0].dpid) if e.cookie == connection.cookie)
    elsewhere = FlowAdd(101, copied.priority, copied.match, copied.actions, copied.cookie, copied.idle_timeout)
    net.fabric.table(101).add_by_hand(elsewhere)
    lasting = FlowAdd(2, 10000, match_of(in_port=2), (), make_cookie(Kind.FLOOD), hard_timeout=5)
    net.fabric.table(2).add_by_hand(lasting)
    rec = Recorder(net)
    net.audit(101)
    net.audit(2)
    assert elsewhere not in net.fabric.entries(101) and lasting not in net.fabric.entries(2)
    assert sorted(e["action"] for e in drift(rec.new())) == [
        "deleted: a flood drop on a port that is not flooding",
        f"deleted: not an entry of connection {connection.id} (web to db)",
    ]


def test_segctls_own_flood_drop_stays_while_its_port_is_flooding():
    net = Net("rules: []\nprotection: {denied_rate: 1, denied_burst: 2}\n")
    net.announce()
    for n in range(4):
        net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000 + n, 5432))
    assert [e.match for e in net.fabric.entries(1) if parse_cookie(e.cookie)[0] == Kind.FLOOD] == [match_of(in_port=1)]
    rec = Recorder(net)
    net.audit(1)
    assert drift(rec.new()) == []


def test_an_entry_found_good_once_is_held_again_when_what_made_it_good_changes():
    """The second audit reuses the first's findings for entries the switch still reports the
    same (neither decoded nor checked again), but only while their reason holds: the
    connection still lives, the quarantine still stands."""
    net = busy_net()
    net.fabric.apply(net.core.quarantine("app", "test", net.now))
    for dpid in DPIDS:
        net.audit(dpid)
    web_db = next(c for c in net.core.connections if c.src.name == "web")
    net.core.ledger.connections.remove(web_db.id)  # forgotten, its entries left behind
    net.core.ledger.quarantined.pop("app")  # released without deleting its drops
    rec = Recorder(net)
    for dpid in DPIDS:
        net.audit(dpid)
    assert not [e for e in net.fabric.entries() if parse_cookie(e.cookie)[2] == web_db.id]
    assert not net.fabric.entries_of(QUARANTINE)
    assert {e["action"] for e in drift(rec.new())} == {
        "deleted: an entry of a connection segctl no longer knows",
        "deleted: not one of the quarantine entries segctl keeps here",
    }
    again = Recorder(net)
    for dpid in DPIDS:
        net.audit(dpid)
    assert drift(again.new()) == []


def test_a_connections_fragment_entries_draw_no_drift():
    net = Net(UDP_POLICY)
    net.announce()
    first, *later = fragments(WEB, DB, "10.0.0.1", "10.0.0.2", 17, struct.pack("!HHHH", 40000, 5353, 3008, 0))
    net.send(1, 1, first)
    net.send(1, 1, later[0])
    assert net.fabric.entries_of(FRAGMENTS)  # the later fragments' entries are on the switches
    rec = Recorder(net)
    for dpid in DPIDS:
        net.audit(dpid)
    assert drift(rec.new()) == []


def test_a_short_lived_drop_outside_its_band_is_deleted():
    """A guard that drops a whole port, or a denial through a meter: their cookies say guard and
    deny, but no guard or denial segctl writes looks like that."""
    net = busy_net()
    whole_port = FlowAdd(1, 30000, match_of(in_port=1), (), make_cookie(Kind.GUARD), hard_timeout=10)
    deny = next(e for e in net.fabric.entries(1) if parse_cookie(e.cookie)[0] == Kind.DENY)
    metered = dataclasses.replace(deny, meter=1)
    table = net.fabric.table(1)
    table.entries.remove(deny)
    for entry in (whole_port, metered):
        table.add_by_hand(entry)
    rec = Recorder(net)
    net.audit(1)
    assert sorted(e["action"] for e in drift(rec.new())) == [
        "deleted: outside the deny band: meter 1 in an unmetered band",
        "deleted: outside the guard band: match lacks ['eth_src']",
    ]
    assert whole_port not in table.entries and metered not in table.entries


def test_a_flood_drop_found_good_is_held_again_when_its_port_stops_flooding():
    """A flood drop is good only while its port floods: it is never taken from the cache of
    entries found good, so the audit after the hold deletes one still there."""
    net = Net("rules: []\nprotection: {denied_rate: 1, denied_burst: 2}\n")
    net.announce()
    for n in range(4):
        net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000 + n, 5432))
    net.audit(1)
    (drop,) = [e for e in net.fabric.entries(1) if parse_cookie(e.cookie)[0] == Kind.FLOOD]
    net.core.ledger.flooding_until.clear()  # the hold is over (the switch kept the drop anyway)
    rec = Recorder(net)
    net.audit(1)
    assert drop not in net.fabric.entries(1)
    assert [e["action"] for e in drift(rec.new())] == ["deleted: a flood drop on a port that is not flooding"]


def test_a_missing_server_side_drop_comes_back_after_the_clock_steps_back():
    """The wall clock may step back (NTP): a connection opened before the read, whose entries
    the switch had, is no less missing because its `created` reads later than the read's start."""
    net = busy_net()
    (drop,) = net.fabric.entries_of(SERVER_DROP)
    net.fabric.table(drop.dpid).entries.remove(drop)
    net.now -= 60.0  # the clock is set back a minute
    rec = Recorder(net)
    assert drop in net.audit(drop.dpid)
    assert drop in net.fabric.entries(drop.dpid)
    assert [e["action"] for e in drift(rec.new())] == ["reinstalled: missing"]


def test_an_audit_stops_watching_for_new_connections_when_it_ends_or_is_replaced():
    net = busy_net()
    auditor, connections = net.core.auditor, net.core.connections
    net.audit(1)
    assert connections.watchers == {}
    auditor.begin(2, net.now)
    first = connections.watchers[2]
    auditor.begin(2, net.now + 40)  # the first read went unanswered: read again
    assert list(connections.watchers) == [2] and connections.watchers[2] is not first
    auditor.begin(1, net.now + 40)
    net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40010, 5432))  # db is on switch 2
    (opened,) = connections.watchers[2]
    assert connections.by_id[opened].dst.name == "db" and first == set() and connections.watchers[1] == set()
    auditor.forget_switch(2)  # the switch left mid-read
    assert list(connections.watchers) == [1]
    net.fabric.apply(auditor.finish(1, net.now + 41))
    assert connections.watchers == {}
