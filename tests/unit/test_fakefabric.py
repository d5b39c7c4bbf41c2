"""The fake fabric behaves like OpenFlow 1.3 switches where segctl depends on it (timeouts,
FlowRemoved, meters, barriers, the fragment mode, the order messages reach a switch). That the
controller's messages are safe to replay: test_replay.py."""

import struct

from segctl.core.flows import Barrier, FlowAdd, FlowDelete, MetersClear, MeterSet, SwitchConfig, match_of
from segctl.core.pipeline import IDLE_TIMEOUTS, PRIORITY_PUNT_METERED, Kind, make_cookie

from ..fakenet import ATTACHED, DB, SWITCHES, WEB, FabricShell, Net, arp_request, ipv4, tcp
from ..fakeswitch import FakeFabric, FlowRemoved

COOKIE = make_cookie(Kind.CONNECTION, 1, 7)
HERE = {"in_port": 1, "eth_type": 0x0800}


def entry(priority=100, idle=0, hard=0, notify=False, meter=None, port=2, cookie=COOKIE, **match):
    return FlowAdd(1, priority, match_of(in_port=1, **match), (("output", port),), cookie, idle, hard, notify, meter)


def fabric_at(time=0.0) -> FakeFabric:
    """A fabric for the mechanics of a switch: it takes arbitrary entries, in no band of segctl's."""
    fabric = FakeFabric(checked=False)
    fabric.time = time
    return fabric


def test_entries_time_out_by_the_clock_and_only_notifying_ones_report_it():
    fabric = fabric_at()
    idle = entry(idle=10, notify=True, eth_type=0x0800)
    hard = entry(priority=200, hard=5, eth_type=0x0800, port=3)
    fabric.apply([idle, hard])
    assert fabric.trace(1, 1, HERE) == ("out", 1, 3)
    fabric.time = 5.0  # the hard timeout counts from the add, whatever the traffic
    assert fabric.trace(1, 1, HERE) == ("out", 1, 2) and fabric.removed == []
    fabric.time = 14.0  # the trace at 5 s was traffic: idle until 15 s
    assert fabric.entries() == [idle]
    fabric.time = 15.0
    assert fabric.entries() == []
    assert fabric.removed == [FlowRemoved(1, COOKIE, "idle_timeout", 100, idle.match)]


def test_a_delete_reports_what_it_took_and_an_add_replaces_silently():
    fabric = fabric_at()
    first = entry(idle=10, notify=True, eth_type=0x0800)
    fabric.apply([first])
    fabric.time = 8.0
    again = entry(idle=10, notify=True, eth_type=0x0800, port=3)  # same match and priority
    fabric.apply([again])
    assert fabric.entries() == [again] and fabric.removed == []
    fabric.time = 17.0  # the replacement's idle time counts from its own add
    assert fabric.entries() == [again]
    other = make_cookie(Kind.CONNECTION, 1, 8)
    fabric.apply([entry(priority=50, cookie=other, notify=True), FlowDelete(1, COOKIE, (1 << 64) - 1)])
    assert [e.cookie for e in fabric.entries()] == [other]
    assert fabric.removed == [FlowRemoved(1, COOKIE, "delete", 100, again.match)]


def test_a_batch_reaches_each_switch_as_the_runtime_sends_it():
    """segctl.ofmsg.order: per switch, deletions and meters first, then the additions."""
    fabric = fabric_at()
    add, delete = entry(eth_type=0x0800), FlowDelete(1, COOKIE, (1 << 64) - 1)
    fabric.apply([add, delete, Barrier(1)])  # the add is planned first; the delete reaches the switch first
    assert fabric.taken == [delete, add, Barrier(1)]
    assert fabric.entries() == [add] and fabric.barriers == [1]
    metered = entry(meter=1, eth_type=0x0800)
    fabric.apply([metered, MeterSet(1, 1, rate=10, burst=1)])  # the meter is made first
    assert fabric.errors == [] and metered in fabric.entries()


def test_meters_refuse_unknown_ids_drop_beyond_their_rate_and_take_their_entries_along():
    fabric = fabric_at()
    fabric.apply([entry(meter=9, eth_type=0x0800)])
    assert fabric.entries() == [] and fabric.errors[0][:2] == (1, "unknown meter")
    metered = entry(meter=1, eth_type=0x0800)
    fabric.apply([MeterSet(1, 1, rate=10, burst=2), metered])
    assert [fabric.trace(1, 1, HERE)[0] for _ in range(3)] == ["out", "out", "drop"]
    fabric.time = 0.1  # 10 packets/s: one more after a tenth of a second
    assert [fabric.trace(1, 1, HERE)[0] for _ in range(2)] == ["out", "drop"]
    fabric.apply([MeterSet(1, 1, rate=10, burst=2)])  # Open vSwitch deletes the meter's entries
    assert fabric.entries() == []
    fabric.apply([MeterSet(1, 1, rate=10, burst=2), metered, entry(priority=5, eth_type=0x0800)])
    fabric.apply([MetersClear(1)])
    assert [e.meter for e in fabric.entries()] == [None]


def test_a_stalled_switch_takes_nothing_and_confirms_nothing_until_it_resumes():
    net = Net()
    net.announce()
    shell = FabricShell(net.fabric)
    net.fabric.stall(101)
    answer = shell.send_and_confirm(net.core.quarantine("web", "test", net.now))
    assert answer == {"confirmed": [1, 2, 102], "unconfirmed": [101]}
    quarantine_drop = {"eth_src": WEB, "eth_dst": DB, "eth_type": 0x0800}
    assert net.fabric.trace(101, 1, quarantine_drop) != ("drop", 101)  # not there yet
    net.fabric.resume(101)
    assert net.fabric.trace(101, 1, quarantine_drop) == ("drop", 101)
    assert shell.send_and_confirm(net.core.release("web", net.now))["unconfirmed"] == []


def test_the_base_pipeline_installs_cleanly_and_caps_a_port_s_packet_ins_in_the_switch():
    net = Net("protection: {packet_in_rate: 5, packet_in_burst: 3}\nrules: []\n")
    assert net.fabric.errors == []
    metered = [e for e in net.fabric.entries(1) if e.priority == PRIORITY_PUNT_METERED]
    assert {e.match_dict()["in_port"] for e in metered} == set(dict(SWITCHES)[1])
    arp = {"eth_src": WEB, "eth_type": 0x0806}
    outcomes = [net.fabric.trace(1, 1, arp)[0] for _ in range(5)]  # the burst, then nothing
    assert outcomes == ["controller"] * 3 + ["drop"] * 2
    assert net.fabric.trace(1, 2, arp)[0] == "controller"  # another port has its own meter


def test_a_connection_idles_out_everywhere_and_a_busy_one_does_not():
    net = Net()
    net.announce()
    busy = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432, flags=0x10)
    quiet = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40001, 5432, flags=0x10)
    busy_back = tcp(DB, WEB, "10.0.0.2", "10.0.0.1", 5432, 40000, flags=0x10)
    net.send(1, 1, busy)
    net.send(1, 1, quiet)
    net.advance(IDLE_TIMEOUTS["tcp"] + 1, keep=[(1, 1, busy), (2, 1, busy_back)])
    assert [c.key.src_port for c in net.core.connections] == [40000]
    (removal, answer) = net.removals[0]
    assert removal.reason == "idle_timeout" and removal.dpid == 1 and answer  # the rest deleted
    assert net.disagreements() == []
    assert net.trace(1, 1, quiet) == ("controller", 1)
    assert net.trace(1, 1, busy) == ("out", *ATTACHED[DB])


def test_an_unauthenticated_sender_s_guard_expires():
    net = Net()
    rogue = "02:00:00:00:00:99"
    net.send(1, 3, arp_request(rogue, "10.0.0.9", "10.0.0.2"))
    fields = {"eth_src": rogue, "eth_type": 0x0806}
    assert net.fabric.trace(1, 3, fields) == ("drop", 1)
    net.advance(10)
    assert net.fabric.trace(1, 3, fields) == ("controller", 1)


def test_a_fragment_s_transport_fields_read_as_zero_until_the_switch_config():
    """OpenFlow's "normal" fragment mode, a switch's own: a fragment's ports, ICMP type and code
    read as zero, so a first fragment of any ICMP message matches an echo reply's entry.
    segctl's SwitchConfig (Open vSwitch's "nx-match") shows a first fragment's own."""
    fabric = fabric_at()
    fabric.apply([entry(eth_type=0x0800, ip_proto=1, icmpv4_type=0, icmpv4_code=0)])
    unreachable = dict(HERE, ip_proto=1, icmpv4_type=3, icmpv4_code=1, ip_frag=0)
    first_fragment = dict(unreachable, ip_frag=1)
    assert fabric.table(1).frag_mode == "normal"
    assert fabric.trace(1, 1, unreachable) == ("drop", 1)  # not a fragment: its own type
    assert fabric.trace(1, 1, first_fragment) == ("out", 1, 2)  # read as type 0, code 0
    fabric.apply([SwitchConfig(1)])
    assert fabric.table(1).frag_mode == "nx-match"
    assert fabric.trace(1, 1, first_fragment) == ("drop", 1)


def test_the_first_fragment_of_an_allowed_datagram_follows_it_because_switches_are_configured():
    net = Net("rules: [{name: mdns, from: {role: web}, to: {role: db}, proto: udp, ports: [5353]}]\n")
    net.announce()
    header = struct.pack("!HHHH", 40000, 5353, 3008, 0)
    net.send(1, 1, ipv4(WEB, DB, "10.0.0.1", "10.0.0.2", 17, header + b"x" * 32))  # opens the connection
    first = ipv4(WEB, DB, "10.0.0.1", "10.0.0.2", 17, header + b"x" * 1472, flags_fragment=0x2000)
    assert {t.frag_mode for t in net.fabric.tables.values()} == {"nx-match"}  # switch_up configured them
    assert net.trace(1, 1, first) == ("out", *ATTACHED[DB])
    net.fabric.table(1).frag_mode = "normal"  # a switch that never took the config
    assert net.trace(1, 1, first) == ("controller", 1)  # port 0 to port 0: no connection's
