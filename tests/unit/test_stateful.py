"""The stateful pipeline (policy `pipeline: stateful | auto`), driven on the fake fabric, whose
switches each have a connection tracker: an allowed service is set up once; later connections
of it never reach the controller; replies pass only for connections the tracker saw opened; the
server can open nothing back; revocation, quarantine, expiry and the audit handle a service's
entries as they handle a connection's. Every "denied" here is a packet traced to where it is
dropped, never a missing answer."""

import pytest

from segctl.core.fabric import tracks_connections
from segctl.core.flows import TABLE_PORT, FlowAdd, PacketOut
from segctl.core.pipeline import (
    CONNECTION,
    CONNECTION_BANDS,
    DENY,
    SERVICE,
    SERVICE_REPLY,
    SERVICE_TRACK,
    Kind,
    band_of,
)

from ..fakenet import APP, ATTACHED, DB, POLICY, WEB, Net
from .helpers import policy
from .test_exactness import reply_to, segment

SYN, SYN_ACK, ACK = 0x02, 0x12, 0x10
STATEFUL = """
pipeline: stateful
rules:
  - {name: web-to-db, from: {role: web}, to: {role: db}, proto: tcp, ports: [5432]}
  - {name: web-to-db-dns, from: {role: web}, to: {role: db}, proto: udp, ports: [53]}
  - {name: ping-db, from: any, to: {role: db}, proto: icmp}
  - {name: app-to-db, from: {role: app}, to: {role: db}, proto: tcp, ports: [5432], scope: connection}
"""


def stateful_net(text=STATEFUL) -> Net:
    net = Net(text)
    net.announce()
    return net


def open_first(net, src, dst, sport, dport, proto=6):
    """The first packet of a service, sent to the controller at its sender's port; returns the
    answer and where the packet the controller sent on ends up."""
    answer = net.send(*ATTACHED[src], segment(src, dst, sport, dport, proto))
    outs = [m for m in answer if isinstance(m, PacketOut)]
    assert len(outs) == 1
    return answer, net.follow(outs[0])


def to(host):
    return ("out", *ATTACHED[host])


def test_a_service_is_set_up_once_and_its_later_connections_never_reach_the_controller():
    net = stateful_net()
    answer, where = open_first(net, WEB, DB, 40000, 5432)
    assert where == to(DB)
    out = next(m for m in answer if isinstance(m, PacketOut))
    assert (out.port, out.in_port) == (TABLE_PORT, ATTACHED[WEB][1])  # through the table: committed
    bands = {band_of(m.cookie) for m in answer if isinstance(m, FlowAdd)}
    assert bands == {SERVICE, SERVICE_TRACK, SERVICE_REPLY}
    (connection,) = net.core.connections
    assert connection.stateful and connection.key.src_port is None and connection.key.dst_port == 5432
    assert net.trace(*ATTACHED[DB], reply_to(WEB, DB, 40000, 5432)) == to(WEB)
    packet_ins = net.core.ledger.packet_ins
    for sport in range(40001, 40051):  # fifty more connections, each answered
        assert net.trace(*ATTACHED[WEB], segment(WEB, DB, sport, 5432, flags=SYN)) == to(DB)
        assert net.trace(*ATTACHED[DB], segment(DB, WEB, 5432, sport, flags=SYN_ACK)) == to(WEB)
        assert net.trace(*ATTACHED[WEB], segment(WEB, DB, sport, 5432, flags=ACK)) == to(DB)
    assert net.core.ledger.packet_ins == packet_ins
    assert len(net.core.connections) == 1
    allows = [e for e in net.core.events.latest(100) if e["kind"] == "allow"]
    assert len(allows) == 1 and allows[0]["pipeline"] == "stateful"


@pytest.mark.parametrize(
    "what, packet",
    [
        ("a SYN back from the service's port", segment(DB, WEB, 5432, 40000, flags=SYN)),
        ("a SYN back to a port no connection uses", segment(DB, WEB, 5432, 41234, flags=SYN)),
        ("an ACK for a connection never opened", segment(DB, WEB, 5432, 41234, flags=ACK)),
        ("a SYN+ACK for a connection never opened", segment(DB, WEB, 5432, 41234, flags=SYN_ACK)),
    ],
    ids=["syn-back", "syn-to-unused-port", "ack-of-nothing", "syn-ack-of-nothing"],
)
def test_the_server_opens_nothing_back_through_the_reply_entries(what, packet):
    net = stateful_net()
    open_first(net, WEB, DB, 40000, 5432)
    assert net.trace(*ATTACHED[DB], reply_to(WEB, DB, 40000, 5432)) == to(WEB)
    assert net.trace(*ATTACHED[DB], packet) == ("drop", ATTACHED[DB][0]), what


def test_the_server_from_another_port_asks_the_controller_and_is_denied():
    net = stateful_net()
    open_first(net, WEB, DB, 40000, 5432)
    packet = segment(DB, WEB, 6000, 40000, flags=SYN)
    assert net.trace(*ATTACHED[DB], packet) == ("controller", ATTACHED[DB][0])
    answer = net.send(*ATTACHED[DB], packet)
    assert not [m for m in answer if isinstance(m, PacketOut)]
    assert [band_of(m.cookie) for m in answer if isinstance(m, FlowAdd)] == [DENY]
    assert net.trace(*ATTACHED[DB], packet) == ("drop", ATTACHED[DB][0])


@pytest.mark.parametrize("proto, port", [(17, 53), (1, 8)])
def test_udp_services_and_pings_answer_only_what_was_sent(proto, port):
    """(A ping stays per connection on the stateful pipeline: its first fragment would match
    no service entry.)"""
    net = stateful_net()
    sport = 8 if proto == 1 else 40000
    dport = 0 if proto == 1 else port
    _, where = open_first(net, WEB, DB, sport, dport, proto)
    assert where == to(DB)
    assert net.trace(*ATTACHED[DB], reply_to(WEB, DB, sport, dport, proto)) == to(WEB)
    if proto == 17:  # another client port: its own datagram first, then its answer
        assert net.trace(*ATTACHED[DB], segment(DB, WEB, 53, 40001, proto)) == ("drop", ATTACHED[DB][0])
        assert net.trace(*ATTACHED[WEB], segment(WEB, DB, 40001, 53, proto)) == to(DB)
        assert net.trace(*ATTACHED[DB], segment(DB, WEB, 53, 40001, proto)) == to(WEB)
    else:  # an echo reply app never asked for
        net2 = stateful_net()
        open_first(net2, APP, DB, 8, 0, 1)
        assert net2.trace(*ATTACHED[DB], reply_to(APP, DB, 8, 0, 1)) == to(APP)
        assert net2.trace(*ATTACHED[DB], segment(DB, WEB, 0, 0, 1)) == ("controller", ATTACHED[DB][0])


def test_a_rule_with_scope_connection_keeps_exact_entries_per_connection():
    net = stateful_net()
    answer, where = open_first(net, APP, DB, 40000, 5432)
    assert where == to(DB)
    assert {band_of(m.cookie) for m in answer if isinstance(m, FlowAdd)} <= {CONNECTION, *CONNECTION_BANDS[:1]}
    assert not next(iter(net.core.connections)).stateful
    assert net.trace(*ATTACHED[APP], segment(APP, DB, 40001, 5432, flags=SYN)) == ("controller", ATTACHED[APP][0])


def test_monitored_passes_stay_per_connection():
    net = stateful_net("pipeline: stateful\nmode: monitor\nrules: []\n")
    _, where = open_first(net, WEB, APP, 40000, 22)
    assert where == to(APP)
    assert not next(iter(net.core.connections)).stateful


def test_revoking_the_service_stops_its_established_connections_at_once():
    net = stateful_net()
    open_first(net, WEB, DB, 40000, 5432)
    assert net.trace(*ATTACHED[DB], reply_to(WEB, DB, 40000, 5432)) == to(WEB)
    messages, revoked = net.core.reload(
        net.core.directory, policy(STATEFUL.replace("ports: [5432]}", "ports: [5433]}", 1)), net.now
    )
    net.fabric.apply(messages)
    assert revoked == 1 and len(net.core.connections) == 0
    assert not net.fabric.entries_of(SERVICE, SERVICE_TRACK, SERVICE_REPLY)
    # The stream's next segments reach the controller (punted), which forwards neither.
    for at, packet in (
        (ATTACHED[WEB], segment(WEB, DB, 40000, 5432, flags=ACK)),
        (ATTACHED[DB], reply_to(WEB, DB, 40000, 5432)),
    ):
        assert net.trace(*at, packet) == ("controller", at[0])
        answer = net.send(*at, packet)
        assert not [m for m in answer if isinstance(m, PacketOut)]
        assert net.trace(*at, packet) == ("drop", at[0])


def test_quarantine_stops_a_stateful_service_on_every_switch():
    net = stateful_net()
    open_first(net, WEB, DB, 40000, 5432)
    net.fabric.apply(net.core.quarantine("web", "test", net.now))
    assert not net.fabric.entries_of(SERVICE, SERVICE_TRACK, SERVICE_REPLY)
    assert net.trace(*ATTACHED[WEB], segment(WEB, DB, 40000, 5432, flags=ACK)) == ("drop", ATTACHED[WEB][0])
    assert net.trace(*ATTACHED[DB], reply_to(WEB, DB, 40000, 5432)) == ("drop", ATTACHED[DB][0])


def test_an_idle_service_expires_and_takes_all_its_entries_with_it():
    net = stateful_net()
    open_first(net, WEB, DB, 40000, 5432)
    net.advance(61)
    assert len(net.core.connections) == 0
    assert not net.fabric.entries_of(*CONNECTION_BANDS)
    assert net.disagreements() == []
    expired = [e for e in net.core.events.latest(100) if e["kind"] == "expire"]
    assert len(expired) == 1 and expired[0]["dst_port"] == 5432


def test_a_lost_entry_on_a_later_switch_is_put_back_and_the_packet_goes_through_it():
    net = stateful_net()
    open_first(net, WEB, DB, 40000, 5432)
    (connection,) = net.core.connections
    middle = connection.path[1].dpid
    table = net.fabric.table(middle)
    table.entries = [e for e in table.entries if band_of(e.cookie) is not SERVICE]
    packet = segment(WEB, DB, 40001, 5432, flags=SYN)
    assert net.trace(*ATTACHED[WEB], packet) == ("controller", middle)
    answer = net.send(middle, connection.path[1].in_port, packet)
    assert {m.dpid for m in answer if isinstance(m, FlowAdd)} == {middle}
    out = next(m for m in answer if isinstance(m, PacketOut))
    assert out.port == TABLE_PORT and net.follow(out) == to(DB)
    assert net.disagreements() == []


def test_the_audit_knows_a_service_s_entries_in_both_tables():
    net = stateful_net()
    open_first(net, WEB, DB, 40000, 5432)
    for dpid in (1, 2, 101, 102):
        net.audit(dpid)
    drift = [e for e in net.core.events.latest(200) if e["kind"] == "drift"]
    assert drift == []
    # A reply entry in table 1 that is no service's: deleted.
    (connection,) = net.core.connections
    genuine = next(e for e in net.fabric.entries_of(SERVICE_REPLY) if e.dpid == ATTACHED[DB][0])
    match = tuple((name, 5433 if name == "tcp_src" else value) for name, value in genuine.match)
    forged = SERVICE_REPLY.entry(genuine.dpid, match, genuine.actions, 9, connection.id + 1, idle=60)
    net.fabric.table(forged.dpid).apply(forged)
    net.audit(forged.dpid)
    drift = [e for e in net.core.events.latest(200) if e["kind"] == "drift"]
    assert drift and "table=1" in drift[-1]["entry"]


def test_after_a_controller_restart_a_live_connection_goes_on_and_nothing_opens_back():
    net = stateful_net()
    open_first(net, WEB, DB, 40000, 5432)
    net.restart()  # the switches wiped (their trackers keep their connections)
    net.announce()
    assert not net.fabric.entries_of(*CONNECTION_BANDS)
    reply = reply_to(WEB, DB, 40000, 5432)
    answer = net.send(*ATTACHED[DB], reply)  # adopted: the service is set up again
    out = next(m for m in answer if isinstance(m, PacketOut))
    assert out.port == TABLE_PORT and net.follow(out) == to(WEB)
    # A segment of a connection the tracker never saw is not adopted through the tracker.
    assert net.trace(*ATTACHED[DB], segment(DB, WEB, 5432, 45555, flags=ACK)) == ("drop", ATTACHED[DB][0])


def test_auto_uses_the_stateful_pipeline_only_where_every_switch_tracks_connections():
    text = STATEFUL.replace("pipeline: stateful", "pipeline: auto")
    net = stateful_net(text)
    open_first(net, WEB, DB, 40000, 5432)
    assert not next(iter(net.core.connections)).stateful  # no switch described itself yet
    for dpid in (1, 2, 101):
        net.core.switch_described(dpid, "Open vSwitch", "3.1.0", net.now)
    _, where = open_first(net, WEB, DB, 40000, 53, 17)
    assert where == to(DB)
    udp = next(c for c in net.core.connections if c.key.proto == 17)
    assert udp.stateful == (udp.switches == [1, 101, 2])  # the path may take spine 102, not described
    net.core.switch_described(102, "Open vSwitch", "3.1.0", net.now)
    _, where = open_first(net, WEB, DB, 40001, 53, 17)
    assert where == to(DB) and all(c.stateful for c in net.core.connections if c.key.src_port is None)
    _, where = open_first(net, WEB, DB, 8, 0, 1)
    assert where == to(DB) and not next(c for c in net.core.connections if c.key.proto == 1).stateful


@pytest.mark.parametrize(
    "hardware, software, tracks",
    [
        ("Open vSwitch", "3.1.0", True),
        ("Open vSwitch", "2.6.1", True),
        ("Open vSwitch", "2.5.0", False),
        ("Open vSwitch", "", False),
        ("Pica8", "3.1.0", False),
        ("", "", False),
    ],
)
def test_which_switches_track_connections(hardware, software, tracks):
    assert tracks_connections(hardware, software) is tracks


def test_a_switch_that_reconnects_must_describe_itself_again():
    net = stateful_net(STATEFUL.replace("pipeline: stateful", "pipeline: auto"))
    net.core.switch_described(1, "Open vSwitch", "3.1.0", net.now)
    assert 1 in net.core.ledger.conntrack_switches
    net.fabric.apply(net.core.switch_up(1, [1, 2, 3, 10, 11], net.now))
    assert 1 not in net.core.ledger.conntrack_switches


def test_the_stateful_bands_are_a_connection_s_and_the_default_pipeline_stays_reactive():
    assert all(k.connection_scoped for k in (Kind.SERVICE, Kind.SERVICE_TRACK, Kind.SERVICE_REPLY))
    assert policy(POLICY).pipeline == "reactive"


def test_the_run_option_overrides_the_policy_s_pipeline_on_every_load(tmp_path):
    from segctl.config import Sources, load_sources

    from ..fakenet import DIRECTORY

    (tmp_path / "d.yaml").write_text(DIRECTORY)
    (tmp_path / "p.yaml").write_text(STATEFUL)
    paths = (str(tmp_path / "d.yaml"), str(tmp_path / "p.yaml"))
    assert load_sources(Sources(*paths))[1].pipeline == "stateful"
    assert load_sources(Sources(*paths, pipeline="reactive"))[1].pipeline == "reactive"


def test_a_sender_seen_on_an_unknown_port_just_after_a_switch_reconnects_is_not_bound_there():
    """A restarted controller: switch 2 is up, its link to the spine not found yet, and web's
    packets still arrive on that port (switch 1 forwards them on its old entries). Binding web
    there would lock web out of its own port and hide the link: nothing is bound until the
    ports settle; a stranger is refused as ever."""
    from segctl.core.controller import Controller
    from segctl.core.fabric import EDGE_SETTLE

    from ..fakenet import DIRECTORY, ROGUE, SWITCHES, tcp
    from .helpers import directory

    core = Controller(directory(DIRECTORY), policy(STATEFUL))
    for dpid, ports in SWITCHES:
        core.switch_up(dpid, ports, 100.0)
    stray = segment(WEB, DB, 40000, 5432, flags=ACK)
    assert core.packet_in(2, 10, stray, 100.5) == []
    assert core.bindings.location(WEB) is None
    assert [e["kind"] for e in core.events.latest(100)].count("deny") == 0
    core.packet_in(1, 3, tcp(ROGUE, DB, "10.0.0.9", "10.0.0.2", 9, 5432), 100.6)
    assert [e.get("problem") for e in core.events.latest(100) if e["kind"] == "deny"] == ["unknown"]
    core.packet_in(1, 1, segment(WEB, DB, 40000, 5432, flags=SYN), 100.0 + EDGE_SETTLE)
    assert core.bindings.location(WEB) == (1, 1)
