"""The Ryu app itself, with fake datapaths and no network: events built from the framework's
own classes (switch messages parsed from their wire bytes, as the framework parses them),
dispatched to the app's handlers as the framework dispatches them, and every effect checked
in the bytes the datapath was sent, parsed back as OpenFlow 1.3."""

from __future__ import annotations

import functools
import importlib
import os
import shutil
import struct
import time

import pytest

import segctl.app as app_module
from segctl import framework, ofmsg
from segctl.app import OpenFlowSwitches, SegctlApp
from segctl.config import Sources
from segctl.core.discovery import PROBE_SOURCE_MAC
from segctl.core.events import EventLog
from segctl.core.flows import Barrier, FlowAdd
from segctl.core.messages import for_switches
from segctl.core.packets import ETH_TYPE_LLDP, mac_bytes
from segctl.core.pipeline import CONNECTION_MASK, Kind, parse_cookie
from segctl.runtime import Runtime

from ..fakenet import DB, SWITCHES, WEB, Net, arp_request, tcp
from ..fakeswitch import FakeFabric

ofp = framework.ofproto_v1_3
parser = framework.ofproto_v1_3_parser
ofp_event = framework.ofp_event
hub = framework.hub
MAIN, DEAD, CONFIG = framework.MAIN_DISPATCHER, framework.DEAD_DISPATCHER, framework.CONFIG_DISPATCHER
ofproto_parser = framework.ofproto_parser
handler = importlib.import_module(f"{framework.PACKAGE}.controller.handler")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEB1, APP1, DB1 = (
    ("02:00:00:00:01:01", "10.0.0.11"),
    ("02:00:00:00:02:01", "10.0.0.21"),
    ("02:00:00:00:03:01", "10.0.0.31"),
)
LIVE, OTHER, LINK_DOWN, ADMIN_DOWN = 1, 2, 3, 4  # the fake datapaths' ports
# What a switch coming up is sent, a run of one kind named once: two live ports, two meters.
# The barrier goes last (segctl.ofmsg.order), after the probes the core planned after it.
SWITCH_UP = ["config", "delete", "meter-delete", "meter-add", "meter-delete", "meter-add", "add"]
SWITCH_UP += ["packet-out", "barrier", "describe"]
WIRE_TIMEOUT = 0.05  # seconds a test waits for a barrier nobody answers


# -- switches: fake datapaths, and the messages they send up ----------------------------------
def port(number: int, state: int = 0, config: int = 0):
    return parser.OFPPort(
        number, f"0a:00:00:00:00:{number % 256:02x}", b"p%d" % number, config, state, 0, 0, 0, 0, 0, 0
    )


class Datapath:
    """What the app uses of a Ryu Datapath: its id, protocol modules, ports, and send(bytes).
    `app` set: it answers each barrier request it is sent, from another green thread, through
    the app's handlers."""

    ofproto = ofp
    ofproto_parser = parser

    def __init__(self, dpid: int, app: SegctlApp | None = None):
        self.id = dpid
        self.ports = {
            n: port(n, **kw)
            for n, kw in {
                LIVE: {},
                OTHER: {},
                LINK_DOWN: {"state": ofp.OFPPS_LINK_DOWN},
                ADMIN_DOWN: {"config": ofp.OFPPC_PORT_DOWN},
                ofp.OFPP_LOCAL: {},
            }.items()
        }
        self.app = app
        self.writes: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.writes.append(data)
        if self.app is not None:
            for message in parse_wire(self, data):
                if isinstance(message, parser.OFPBarrierRequest):
                    hub.spawn(deliver, self.app, from_switch(self, ofp.OFPT_BARRIER_REPLY, xid=message.xid))

    def sent(self) -> list:
        """Every message sent so far, parsed; the writes are forgotten."""
        messages = [m for data in self.writes for m in parse_wire(self, data)]
        self.writes.clear()
        return messages


def from_switch(datapath, msg_type: int, body: bytes = b"", xid: int = 0):
    """A message from the switch, parsed from its bytes by the framework's parser."""
    data = struct.pack("!BBHI", ofp.OFP_VERSION, msg_type, 8 + len(body), xid) + body
    msg = ofproto_parser.msg(datapath, *ofproto_parser.header(data), data)
    assert msg is not None
    return msg


def match_bytes(**fields) -> bytes:
    buf = bytearray()
    parser.OFPMatch(**fields).serialize(buf, 0)
    return bytes(buf)


def packet_in(datapath, in_port: int, data: bytes):
    head = struct.pack(ofp.OFP_PACKET_IN_PACK_STR, ofp.OFP_NO_BUFFER, len(data), ofp.OFPR_NO_MATCH, 0, 0)
    return from_switch(datapath, ofp.OFPT_PACKET_IN, head + match_bytes(in_port=in_port) + b"\0\0" + data)


def port_status(datapath, number: int, reason: int, state: int = 0, config: int = 0):
    mac = mac_bytes(f"0a:00:00:00:00:{number:02x}")
    body = struct.pack(ofp.OFP_PORT_STATUS_PACK_STR, reason, number, mac, b"p%d" % number, config, state, *[0] * 6)
    return from_switch(datapath, ofp.OFPT_PORT_STATUS, body)


def flow_removed(datapath, cookie: int, reason: int):
    body = struct.pack(ofp.OFP_FLOW_REMOVED_PACK_STR0, cookie, 20000, reason, 0, 60, 0, 60, 0, 1, 60)
    return from_switch(datapath, ofp.OFPT_FLOW_REMOVED, body + match_bytes(in_port=LIVE))


def features(datapath):
    body = struct.pack(ofp.OFP_SWITCH_FEATURES_PACK_STR, datapath.id, 0, 254, 0, 0, 0)
    return from_switch(datapath, ofp.OFPT_FEATURES_REPLY, body)


def error(datapath, error_type: int, code: int):
    return from_switch(datapath, ofp.OFPT_ERROR, struct.pack(ofp.OFP_ERROR_MSG_PACK_STR, error_type, code) + b"bad")


def state_change(datapath, state):
    ev = ofp_event.EventOFPStateChange(datapath)
    ev.state = state
    return ev


def deliver(app: SegctlApp, event, state: str = MAIN) -> int:
    """Hand an event (a switch message is wrapped in its event class) to the handlers the app
    registered for it in this state, as the framework's event loop does; how many ran."""
    if not isinstance(event, ofp_event.EventOFPStateChange):
        event = ofp_event.ofp_msg_to_ev(event)
    handlers = list(app.get_handlers(event, state))
    for run in handlers:
        run(event)
    return len(handlers)


# -- what the switch was sent, parsed back ---------------------------------------------------
def parse_wire(datapath, data: bytes) -> list:
    """The messages in one write (several back to back), each valid OpenFlow 1.3: a flow mod
    through the framework's own parser; the others, which it only encodes, decoded and encoded
    again by it to the very same bytes."""
    messages, at = [], 0
    while at < len(data):
        version, msg_type, length, xid = ofproto_parser.header(data[at:])
        assert version == ofp.OFP_VERSION and 8 <= length <= len(data) - at
        raw = data[at : at + length]
        if msg_type == ofp.OFPT_FLOW_MOD:
            message = ofproto_parser.msg(datapath, version, msg_type, length, xid, raw)
            assert isinstance(message, parser.OFPFlowMod)
        else:
            message = _rebuilt(datapath, msg_type, raw[8:])
            message.xid = xid
            message.serialize()
            assert bytes(message.buf) == raw, message
        messages.append(message)
        at += length
    return messages


def _rebuilt(datapath, msg_type: int, body: bytes):
    if msg_type == ofp.OFPT_SET_CONFIG:
        return parser.OFPSetConfig(datapath, *struct.unpack("!HH", body))
    if msg_type == ofp.OFPT_BARRIER_REQUEST:
        assert body == b""
        return parser.OFPBarrierRequest(datapath)
    if msg_type == ofp.OFPT_PACKET_OUT:
        buffer_id, in_port, actions_len = struct.unpack_from("!IIH6x", body)
        return parser.OFPPacketOut(
            datapath,
            buffer_id,
            in_port,
            _parts(parser.OFPAction, body[16 : 16 + actions_len]),
            body[16 + actions_len :],
        )
    if msg_type == ofp.OFPT_MULTIPART_REQUEST and body[:2] == b"\0\0":  # OFPMP_DESC
        return parser.OFPDescStatsRequest(datapath, struct.unpack_from("!H", body, 2)[0])
    if msg_type == ofp.OFPT_MULTIPART_REQUEST:
        kind, flags, table_id, out_port, out_group, cookie, mask = struct.unpack_from("!HH4xB3xII4xQQ", body)
        assert kind == ofp.OFPMP_FLOW and flags == 0
        match = parser.OFPMatch.parser(body, 40)
        return parser.OFPFlowStatsRequest(datapath, flags, table_id, out_port, out_group, cookie, mask, match)
    if msg_type == ofp.OFPT_METER_MOD:
        command, flags, meter_id = struct.unpack_from("!HHI", body)
        return parser.OFPMeterMod(datapath, command, flags, meter_id, _parts(parser.OFPMeterBandHeader, body[8:]))
    raise AssertionError(f"segctl sent a message of type {msg_type}")


def _parts(cls, data: bytes) -> list:
    parts, at = [], 0
    while at < len(data):
        part = cls.parser(data, at)
        parts.append(part)
        at += part.len
    return parts


def kind(message) -> str:
    """A short name of a parsed message, for comparing sequences."""
    if isinstance(message, parser.OFPFlowMod):
        return {ofp.OFPFC_ADD: "add", ofp.OFPFC_DELETE: "delete", ofp.OFPFC_DELETE_STRICT: "delete-strict"}[
            message.command
        ]
    if isinstance(message, parser.OFPMeterMod):
        return {ofp.OFPMC_ADD: "meter-add", ofp.OFPMC_DELETE: "meter-delete"}[message.command]
    if isinstance(message, parser.OFPFlowMod) and message.command == ofp.OFPFC_DELETE_STRICT:
        return "delete-strict"
    return {
        parser.OFPFlowStatsRequest: "flow-stats",
        parser.OFPDescStatsRequest: "describe",
        parser.OFPSetConfig: "config",
        parser.OFPBarrierRequest: "barrier",
        parser.OFPPacketOut: "packet-out",
    }[type(message)]


def squeezed(messages) -> list[str]:
    """The kinds in order, a run of one kind named once."""
    kinds = [kind(m) for m in messages]
    return [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]


def outputs(message) -> list[int]:
    actions = message.actions if isinstance(message, parser.OFPPacketOut) else message.instructions[-1].actions
    return [a.port for a in actions]


def outputs_none(message) -> bool:
    """A flow mod that drops: no instruction with actions."""
    return all(not getattr(i, "actions", None) for i in message.instructions)


def cookie_kind(message) -> Kind:
    return parse_cookie(message.cookie)[0]


# -- the app -----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _a_stop_fails_the_test(monkeypatch):
    """A handler that raises stops the controller (`fail_fast`: `os._exit(70)`); here it fails
    the test instead of ending the whole test run (and `make mutate` sees a killed mutant)."""

    def stopped(code):
        pytest.fail(f"the controller stopped (os._exit({code}))")

    monkeypatch.setattr(app_module.os, "_exit", stopped)


@pytest.fixture
def app(tmp_path):
    segctl = new_app(tmp_path)
    yield segctl
    segctl.runtime.events.close()


def new_app(folder) -> SegctlApp:
    for name in ("directory.yaml", "policy.yaml"):
        shutil.copy(f"{ROOT}/policies/{name}", folder / name)
    switches = OpenFlowSwitches()
    runtime = Runtime(
        Sources(str(folder / "directory.yaml"), str(folder / "policy.yaml")),
        EventLog(str(folder / "events.jsonl")),
        str(folder / "state"),
        switches,
    )
    segctl = SegctlApp(segctl_runtime=runtime, segctl_switches=switches)
    handler.register_instance(segctl)  # as the framework's AppManager does on instantiating it
    return segctl


def connect(app: SegctlApp, datapath: Datapath) -> list:
    """The switch's features, then its state change to MAIN; what it was sent."""
    assert deliver(app, features(datapath), CONFIG) == 1
    assert datapath.writes == []
    assert deliver(app, state_change(datapath, MAIN)) == 1
    app.core.ledger.settling_until = 0.0  # (its links known: see EDGE_SETTLE)
    return datapath.sent()


def bound(app: SegctlApp, datapath: Datapath) -> None:
    """web1 on port LIVE, app1 and db1 on port OTHER announce themselves (ARP)."""
    for (mac, ip), at in ((WEB1, LIVE), (APP1, OTHER), (DB1, OTHER)):
        deliver(app, packet_in(datapath, at, arp_request(mac, ip, ip)))
    datapath.sent()


def test_every_handler_is_registered_for_the_states_the_framework_sends_its_event_in(app):
    registered = {
        cls.__name__: sorted(h.callers[cls].dispatchers) for cls, hs in app.event_handlers.items() for h in hs
    }
    assert registered == {
        "EventOFPBarrierReply": [MAIN],
        "EventOFPStateChange": sorted([MAIN, DEAD]),
        "EventOFPSwitchFeatures": [CONFIG],
        "EventOFPPortStatus": [MAIN],
        "EventOFPPacketIn": [MAIN],
        "EventOFPFlowRemoved": [MAIN],
        "EventOFPErrorMsg": sorted([CONFIG, MAIN]),
        "EventOFPFlowStatsReply": [MAIN],
        "EventOFPDescStatsReply": [MAIN],
    }


def test_a_switch_coming_up_gets_its_config_a_clean_table_the_pipeline_a_barrier_then_probes(app):
    datapath = Datapath(1)
    sent = connect(app, datapath)
    assert app.switches.datapaths == {1: datapath}
    assert squeezed(sent) == SWITCH_UP
    config, wipe = sent[0], sent[1]
    assert (config.flags, config.miss_send_len) == (ofmsg.OFPC_FRAG_NX_MATCH, ofp.OFPCML_NO_BUFFER)
    # every entry of every table, whoever wrote it
    assert (wipe.cookie, wipe.cookie_mask, wipe.table_id, len(wipe.match.fields)) == (0, 0, ofp.OFPTT_ALL, 0)
    assert sent[2].meter_id == ofp.OFPM_ALL  # every meter cleared, then one per live port
    meters = [m for m in sent if kind(m) == "meter-add"]
    assert [m.meter_id for m in meters] == [LIVE, OTHER]
    assert all(m.bands[0].type == ofp.OFPMBT_DROP for m in meters)
    adds = [m for m in sent if kind(m) == "add"]
    assert {cookie_kind(m) for m in adds} == {Kind.MISS, Kind.PUNT, Kind.PUNT_METERED, Kind.PUNT_OPENING}
    assert {m.match.get("in_port") for m in adds if m.priority > 1000} == {LIVE, OTHER}  # live ports only
    probes = [m for m in sent if kind(m) == "packet-out"]
    assert [outputs(p) for p in probes] == [[LIVE], [OTHER]]  # not the down ports, nor LOCAL
    assert all(
        p.data[12:14] == struct.pack("!H", ETH_TYPE_LLDP) and p.data[6:12] == mac_bytes(PROBE_SOURCE_MAC)
        for p in probes
    )
    assert sorted(app.core.topology.ports[1]) == [LIVE, OTHER]


def test_an_allowed_first_packet_installs_its_connection_and_goes_on_a_denied_one_does_not(app):
    datapath = Datapath(1)
    connect(app, datapath)
    bound(app, datapath)
    syn = tcp(WEB1[0], APP1[0], WEB1[1], APP1[1], 40000, 8080)
    assert deliver(app, packet_in(datapath, LIVE, syn)) == 1
    sent = datapath.sent()
    assert squeezed(sent) == ["add", "packet-out"]
    forward = next(m for m in sent if kind(m) == "add" and m.match.get("tcp_dst") == 8080)
    assert (forward.match["in_port"], forward.match["eth_src"], outputs(forward)) == (LIVE, WEB1[0], [OTHER])
    assert forward.flags & ofp.OFPFF_SEND_FLOW_REM and forward.idle_timeout > 0
    assert {cookie_kind(m) for m in sent if kind(m) == "add"} == {Kind.CONNECTION, Kind.SERVER_DROP}
    (out,) = [m for m in sent if kind(m) == "packet-out"]
    assert (out.in_port, outputs(out), bytes(out.data)) == (LIVE, [OTHER], syn)
    assert len(app.core.connections) == 1

    denied = tcp(WEB1[0], DB1[0], WEB1[1], DB1[1], 40001, 5432)
    deliver(app, packet_in(datapath, LIVE, denied))
    sent = datapath.sent()
    assert [kind(m) for m in sent] == ["add"] and cookie_kind(sent[0]) == Kind.DENY and outputs_none(sent[0])
    # a packet-in from a switch the app does not know (gone, or not yet up) changes nothing
    assert deliver(app, packet_in(Datapath(9), LIVE, syn)) == 1 and app.core.packet_ins == 5


def test_a_connection_s_entry_timing_out_deletes_the_rest_and_a_port_going_down_unbinds(app):
    datapath = Datapath(1)
    connect(app, datapath)
    bound(app, datapath)
    deliver(app, packet_in(datapath, LIVE, tcp(WEB1[0], APP1[0], WEB1[1], APP1[1], 40000, 8080)))
    installed = datapath.sent()
    (connection,) = app.core.connections
    assert {m.cookie & CONNECTION_MASK for m in installed if kind(m) == "add"} == {connection.cookie & CONNECTION_MASK}
    assert deliver(app, flow_removed(datapath, connection.cookie, ofp.OFPRR_IDLE_TIMEOUT)) == 1
    sent = datapath.sent()
    assert [kind(m) for m in sent] == ["delete", "barrier"]
    assert (sent[0].cookie, sent[0].cookie_mask) == (connection.cookie & CONNECTION_MASK, CONNECTION_MASK)
    assert app.core.connections.by_id == {}
    (expired,) = [e for e in app.core.events.latest(50) if e["kind"] == "expire"]
    assert (expired["packets"], expired["bytes"]) == (1, 60)  # what the switch counted
    # a delete's FlowRemoved (segctl's own) changes nothing
    deliver(app, flow_removed(datapath, connection.cookie, ofp.OFPRR_DELETE))
    assert datapath.sent() == []

    assert deliver(app, port_status(datapath, OTHER, ofp.OFPPR_MODIFY, state=ofp.OFPPS_LINK_DOWN)) == 1
    assert APP1[0] not in app.core.bindings.by_mac and OTHER not in app.core.topology.ports[1]
    datapath.sent()
    assert deliver(app, port_status(datapath, LINK_DOWN, ofp.OFPPR_MODIFY)) == 1  # the cable is in
    sent = datapath.sent()
    assert squeezed(sent) == ["meter-delete", "meter-add", "add", "packet-out"]
    assert sent[1].meter_id == LINK_DOWN and outputs(sent[-1]) == [LINK_DOWN]
    assert deliver(app, port_status(datapath, ofp.OFPP_LOCAL, ofp.OFPPR_ADD)) == 1  # not a port of the fabric
    assert datapath.sent() == [] and ofp.OFPP_LOCAL not in app.core.topology.ports[1]


def test_a_dead_switch_is_forgotten_unless_a_newer_connection_replaced_it(app):
    old, new, other = Datapath(1), Datapath(1), Datapath(2)
    connect(app, old)
    connect(app, other)
    connect(app, new)  # the switch reconnected before the old connection was seen to die
    assert deliver(app, state_change(old, DEAD), DEAD) == 1
    assert app.switches.datapaths == {1: new, 2: other} and 1 in app.core.topology.ports
    assert deliver(app, state_change(new, DEAD), DEAD) == 1
    assert app.switches.datapaths == {2: other} and 1 not in app.core.topology.ports
    assert new.writes == [] and old.writes == []
    anonymous = Datapath(None)  # a switch that died before saying who it is
    assert deliver(app, state_change(anonymous, DEAD), DEAD) == 1 and app.switches.datapaths == {2: other}


def test_an_error_from_a_switch_is_logged_and_nothing_else(app, caplog):
    datapath = Datapath(1)
    connect(app, datapath)
    assert deliver(app, error(datapath, ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_UNKNOWN_METER)) == 1
    assert deliver(app, error(datapath, ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_TYPE), CONFIG) == 1
    assert datapath.writes == [] and app.switches.datapaths == {1: datapath}
    logged = [r.getMessage() for r in caplog.records if r.name == "segctl.app"]
    assert f"switch 1 rejected a message: type={ofp.OFPET_METER_MOD_FAILED} code={ofp.OFPMMFC_UNKNOWN_METER}" in logged


# -- barriers ----------------------------------------------------------------------------------
def within(app: SegctlApp, monkeypatch, timeout: float) -> None:
    """The runtime's confirmations wait `timeout` seconds for the switches' answers."""
    monkeypatch.setattr(
        app.switches, "send_and_confirm", functools.partial(app.switches.send_and_confirm, timeout=timeout)
    )


def test_a_quarantine_returns_once_every_switch_answered_its_barrier(app, monkeypatch):
    one, two = Datapath(1, app), Datapath(2, app)
    connect(app, one)
    connect(app, two)
    hub.sleep(0)  # the switch-up barriers are answered (nobody waits for them)
    within(app, monkeypatch, 1.0)  # a switch that fails to answer fails the test in a second
    started = time.monotonic()
    answer = app.runtime.quarantine("web1", "test", by="tester")
    assert answer["switches"] == {"confirmed": [1, 2], "unconfirmed": []}
    assert time.monotonic() - started < 1.0
    for datapath in (one, two):
        sent = datapath.sent()
        assert kind(sent[-1]) == "barrier" and sent[-1].xid >= 0x80000000
        assert {cookie_kind(m) for m in sent if kind(m) == "add"} == {Kind.QUARANTINE}
    assert app.switches._barriers == {}


def test_a_switch_that_never_answers_is_reported_unconfirmed_after_the_timeout(app, monkeypatch):
    answering, silent = Datapath(1, app), Datapath(2)
    connect(app, answering)
    connect(app, silent)
    within(app, monkeypatch, WIRE_TIMEOUT)
    started = time.monotonic()
    answer = app.runtime.quarantine("web1", "test", by="tester")
    assert answer["switches"] == {"confirmed": [1], "unconfirmed": [2]}
    assert WIRE_TIMEOUT <= time.monotonic() - started < 1.0
    (barrier,) = [m for m in silent.sent() if kind(m) == "barrier"]
    assert all(key[0] != 2 for key in app.switches._barriers)  # its waiter is not left behind
    deliver(app, from_switch(silent, ofp.OFPT_BARRIER_REPLY, xid=barrier.xid))  # a late answer: harmless
    assert silent.writes == []


def test_a_barrier_reply_confirms_only_its_own_request(app):
    datapath = Datapath(1)
    connect(app, datapath)

    def confirm(timeout: float, replies) -> dict:
        """send_and_confirm a barrier from a green thread; `replies(xid)` are the barrier replies
        the app then gets, given the barrier's xid."""
        waiting = hub.spawn(app.switches.send_and_confirm, [Barrier(1)], timeout)
        hub.sleep(0)  # it sends the barrier and waits
        (barrier,) = datapath.sent()
        for reply in replies(barrier.xid):
            deliver(app, reply)
        return waiting.wait()

    def wrong(xid):
        reply = functools.partial(from_switch, msg_type=ofp.OFPT_BARRIER_REPLY)
        return [reply(datapath, xid=xid + 1), reply(datapath, xid=0), reply(Datapath(2), xid=xid)]  # another switch

    def right(xid):
        return [from_switch(datapath, ofp.OFPT_BARRIER_REPLY, xid=xid)]

    assert confirm(WIRE_TIMEOUT, wrong) == {"confirmed": [], "unconfirmed": [1]}
    started = time.monotonic()
    assert confirm(1.0, right) == {"confirmed": [1], "unconfirmed": []}
    assert time.monotonic() - started < 1.0


# -- the periodic work -------------------------------------------------------------------------
class Stop(BaseException):
    """Ends a forever-loop from inside hub.sleep (not an Exception: fail_fast lets it pass)."""


def sleeping(monkeypatch, times: int) -> list[float]:
    """hub.sleep records how long it was asked to sleep, and stops the loop after `times`."""
    asked: list[float] = []

    def sleep(seconds):
        if len(asked) == times:
            raise Stop
        asked.append(seconds)

    monkeypatch.setattr(app_module.hub, "sleep", sleep)
    return asked


def test_link_discovery_probes_every_live_port_once_a_second(app, monkeypatch):
    datapath = Datapath(1)
    connect(app, datapath)
    asked = sleeping(monkeypatch, 10)
    with pytest.raises(Stop):
        app._discover_links_forever()
    assert sum(asked) == pytest.approx(1.0)
    probes = datapath.sent()
    assert sorted(outputs(p)[0] for p in probes) == [LIVE, OTHER] and {kind(p) for p in probes} == {"packet-out"}


def test_events_are_flushed_and_the_directory_refreshed_on_their_schedules(app, monkeypatch, tmp_path):
    datapath = Datapath(1)
    connect(app, datapath)
    asked = sleeping(monkeypatch, 1)
    with pytest.raises(Stop):
        app._flush_events_forever()
    assert asked == [app_module.EVENTS_FLUSH_INTERVAL]
    assert '"kind": "switch-up"' in (tmp_path / "events.jsonl").read_text()
    asked = sleeping(monkeypatch, 2)
    with pytest.raises(Stop):
        app._refresh_directory_forever()  # a YAML directory: looked at, nothing to read
    assert len(asked) == 2 and datapath.writes == []


def test_the_event_log_is_not_written_while_an_action_waits_for_its_switches(app, monkeypatch, tmp_path):
    from segctl.runtime import ACTIONS

    connect(app, Datapath(1))
    events = tmp_path / "events.jsonl"
    with ACTIONS.running():
        sleeping(monkeypatch, 3)
        with pytest.raises(Stop):
            app._flush_events_forever()
        assert events.read_text() == ""
    sleeping(monkeypatch, 1)
    with pytest.raises(Stop):
        app._flush_events_forever()
    assert '"kind": "switch-up"' in events.read_text()


def test_no_flow_table_is_read_while_an_action_waits_for_its_switches(app, monkeypatch):
    from segctl.runtime import ACTIONS

    datapath = Datapath(1)
    connect(app, datapath)
    datapath.sent()
    with ACTIONS.running():
        sleeping(monkeypatch, 3)
        with pytest.raises(Stop):
            app._audit_forever()
        assert datapath.sent() == []
    sleeping(monkeypatch, 1)
    with pytest.raises(Stop):
        app._audit_forever()
    assert [kind(m) for m in datapath.sent()] == ["flow-stats"]


def test_background_work_pauses_until_the_actions_under_way_end(monkeypatch):
    from segctl.runtime import ACTIONS

    asked = []

    def sleep(seconds):
        asked.append(seconds)
        if len(asked) == 3:
            ACTIONS.under_way -= 1  # the action ends

    monkeypatch.setattr(app_module.hub, "sleep", sleep)
    ACTIONS.under_way += 1
    app_module._pause()
    assert asked == [0, app_module.ACTION_WAIT, app_module.ACTION_WAIT] and ACTIONS.under_way == 0


# -- fail fast ---------------------------------------------------------------------------------
class Exited(BaseException):
    pass


FAILING = {
    # handler: (the core call made to fail, the event that reaches it)
    "_state_change": ("switch_up", lambda dp: state_change(Datapath(2), MAIN)),
    "_port_status": ("port_changed", lambda dp: port_status(dp, OTHER, ofp.OFPPR_DELETE)),
    "_packet_in": ("packet_in", lambda dp: packet_in(dp, LIVE, arp_request(*WEB1, WEB1[1]))),
    "_flow_removed": ("flow_removed", lambda dp: flow_removed(dp, 1, ofp.OFPRR_IDLE_TIMEOUT)),
    "_discover_links_forever": ("discover", None),
}


@pytest.mark.parametrize("name", sorted(FAILING))
def test_a_handler_whose_core_call_raises_stops_the_controller(app, monkeypatch, tmp_path, name):
    datapath = Datapath(1)
    connect(app, datapath)
    core_call, event = FAILING[name]
    exits, shutdowns = [], []

    def exit_now(code):
        exits.append(code)
        raise Exited

    def broken(*args):
        raise ValueError("a bug")

    monkeypatch.setattr(app_module.os, "_exit", exit_now)
    monkeypatch.setattr(app_module.logging, "shutdown", lambda: shutdowns.append(True))
    monkeypatch.setattr(app_module.hub, "sleep", lambda seconds: None)
    monkeypatch.setattr(app.core, core_call, broken)
    with pytest.raises(Exited):
        if event is None:
            getattr(app, name)()
        else:
            deliver(app, event(datapath))
    assert exits == [70] and shutdowns == [True]
    assert '"kind": "switch-up"' in (tmp_path / "events.jsonl").read_text()  # the events were written out first


# -- the fake fabric sees what the wire carries ------------------------------------------------
def test_the_fake_fabric_takes_each_switch_s_messages_in_the_order_they_go_on_the_wire():
    """For the same batches, the switches' writes are the fake fabric's messages, encoded, in
    the order it took them: what the fake tables model is what a real switch is sent."""
    net = Net()
    net.announce()
    batches = [net.core.switch_up(dpid, ports, net.now) for dpid, ports in SWITCHES]
    net.announce()
    batches.append(net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 4000, 5432)))
    batches.append(net.core.quarantine("web", "test", net.now))
    batches.append(list(reversed(net.core.release("web", net.now))))  # whatever order the core says
    switches, fabric = OpenFlowSwitches(), FakeFabric()
    datapaths = {dpid: Datapath(dpid) for dpid, _ in SWITCHES}
    for dpid, datapath in datapaths.items():
        switches.connected(dpid, datapath)
    for batch in batches:
        fabric.apply(batch)
        switches.send(for_switches(batch)[0])
    for dpid, datapath in datapaths.items():
        wire = b"".join(datapath.writes)
        taken = [m for m in fabric.taken if m.dpid == dpid]
        assert len(datapath.writes) == len([b for b in batches if any(m.dpid == dpid for m in for_switches(b)[0])])
        assert _zero_barrier_xids(wire) == b"".join(_encoded(m) for m in taken)
        assert squeezed(parse_wire(datapath, wire))[:3] == ["config", "delete", "meter-delete"]


def _encoded(message) -> bytes:
    return (
        struct.pack("!BBHI", ofp.OFP_VERSION, ofp.OFPT_BARRIER_REQUEST, 8, 0)
        if isinstance(message, Barrier)
        else ofmsg.encode(message)
    )


def _zero_barrier_xids(wire: bytes) -> bytes:
    out, at = bytearray(), 0
    while at < len(wire):
        _, msg_type, length, _ = struct.unpack_from("!BBHI", wire, at)
        chunk = bytearray(wire[at : at + length])
        if msg_type == ofp.OFPT_BARRIER_REQUEST:
            chunk[4:8] = b"\0\0\0\0"
        out += chunk
        at += length
    return bytes(out)


def test_the_flow_table_audit_reads_a_switch_and_deletes_what_segctl_did_not_write(app, monkeypatch):
    """The audit loop asks for the table; the answer comes in two parts (the framework only
    steps over the records); a foreign entry in it is deleted, strictly, in its own table."""
    datapath = Datapath(1)
    connect(app, datapath)
    datapath.sent()
    asked = sleeping(monkeypatch, 1)
    with pytest.raises(Stop):
        app._audit_forever()
    assert asked == [app_module.AUDIT_TICK]
    (request,) = datapath.sent()
    assert kind(request) == "flow-stats" and request.table_id == ofp.OFPTT_ALL
    ours = app.core.fabric.base_entries(1)
    foreign = FlowAdd(1, 65000, (), (("output", OTHER),), 0)
    first = ofmsg.encode_flow_stats_reply(ours, xid=request.xid, more=True)
    last = ofmsg.encode_flow_stats_reply([foreign], xid=request.xid, table_id=2)
    assert deliver(app, from_switch(datapath, ofp.OFPT_MULTIPART_REPLY, first[8:], request.xid)) == 1
    deliver(app, from_switch(datapath, ofp.OFPT_MULTIPART_REPLY, last[8:], request.xid))
    assert datapath.sent() == [] and app.answers.qsize() == 2  # queued for the audit's own thread
    sleeping(monkeypatch, 0)
    with pytest.raises(Stop):
        app._audit_answers_forever()  # the first part, then a yield to the packet-ins
    assert datapath.sent() == [] and app.answers.qsize() == 1  # nothing foreign in the first part
    with pytest.raises(Stop):
        app._audit_answers_forever()
    (delete,) = datapath.sent()
    assert (kind(delete), delete.table_id, delete.priority, len(delete.match.fields)) == ("delete-strict", 2, 65000, 0)
    assert app.runtime.audit_view()["switches"][0]["entries"] == len(ours) + 1
    # a reply to no read of ours (another xid) is ignored
    deliver(app, from_switch(datapath, ofp.OFPT_MULTIPART_REPLY, last[8:], request.xid + 1))
    app._audit_answer(*app.answers.get())
    assert datapath.sent() == []


def test_a_big_part_of_a_flow_table_answer_is_audited_a_slice_at_a_time_the_switches_served_between(app, monkeypatch):
    datapath = Datapath(1)
    connect(app, datapath)
    datapath.sent()
    sleeping(monkeypatch, 1)
    with pytest.raises(Stop):
        app._audit_forever()
    (request,) = datapath.sent()
    ours = app.core.fabric.base_entries(1)
    foreign = [FlowAdd(1, 60000 + n, (), (("output", OTHER),), 0) for n in range(150)]
    reply = ofmsg.encode_flow_stats_reply(ours + foreign, xid=request.xid)
    deliver(app, from_switch(datapath, ofp.OFPT_MULTIPART_REPLY, reply[8:], request.xid))
    deleted_at_each_pause = []
    monkeypatch.setattr(app_module, "_pause", lambda: deleted_at_each_pause.append(len(datapath.sent())))
    app._audit_answer(*app.answers.get())
    slice_ = app_module.AUDIT_SLICE
    total = len(ours) + len(foreign)
    assert len(deleted_at_each_pause) == -(-total // slice_) - 1  # a pause between two slices
    assert sum(deleted_at_each_pause) + len(datapath.sent()) == len(foreign)  # every foreign one deleted
    assert app.runtime.audit_view()["switches"][0]["entries"] == total  # the whole answer, once


def description(datapath, hardware: str, software: str):
    """A switch's answer to the description request (OFPMP_DESC), as its bytes."""
    fields = (b"Nicira, Inc.", hardware.encode(), software.encode(), b"None", b"None")
    body = struct.pack("!HH4x", ofp.OFPMP_DESC, 0) + struct.pack("!256s256s256s32s256s", *fields)
    return from_switch(datapath, ofp.OFPT_MULTIPART_REPLY, body)


@pytest.mark.parametrize("hardware, software, tracks", [("Open vSwitch", "3.1.0", True), ("Pica8", "3.1.0", False)])
def test_a_switch_that_describes_itself_as_open_vswitch_tracks_connections(app, hardware, software, tracks):
    datapath = Datapath(1)
    connect(app, datapath)
    assert deliver(app, description(datapath, hardware, software)) == 1
    assert (1 in app.core.ledger.conntrack_switches) is tracks
    (event,) = [e for e in app.core.events.latest(50) if e["kind"] == "switch-described"]
    assert (event["hardware"], event["software"], event["conntrack"]) == (hardware, software, tracks)


# -- answers held while more of the switch's messages are read ------------------------------
class Unread:
    """A switch's socket read ahead by the framework (framework.wrap_socket), with `left` bytes
    of its next messages read and not yet handed over."""

    def __init__(self, datapath) -> None:
        self.arriving = [b"\0" * 64]
        datapath.socket = self
        framework.wrap_socket(datapath)
        datapath.socket.recv(8)

    def recv(self, size: int) -> bytes:
        return self.arriving.pop(0) if self.arriving else b""


def test_while_more_of_a_switch_s_messages_are_read_its_answers_wait_and_go_as_one_write(app, tmp_path):
    datapath, fresh = Datapath(1), Datapath(1)
    connect(app, datapath)
    bound(app, datapath)
    syns = [tcp(WEB1[0], APP1[0], WEB1[1], APP1[1], port, 8080) for port in (40000, 40001, 40002)]
    Unread(datapath)
    for syn in syns:
        deliver(app, packet_in(datapath, LIVE, syn))
    assert datapath.writes == []  # more to read: held
    datapath.socket.recv(56)  # the last message handed over
    denied = tcp(WEB1[0], DB1[0], WEB1[1], DB1[1], 40003, 5432)
    deliver(app, packet_in(datapath, LIVE, denied))
    assert len(datapath.writes) == 1  # all four answers, one write
    held = parse_wire(datapath, bytes(datapath.writes[0]))

    # the very messages the same packet-ins get answered one by one
    (tmp_path / "twin").mkdir()
    twin = new_app(tmp_path / "twin")
    connect(twin, fresh)
    bound(twin, fresh)
    for syn in [*syns, denied]:
        deliver(twin, packet_in(fresh, LIVE, syn))
    assert len(fresh.writes) == 4
    assert [uncooked(m) for m in held] == [uncooked(m) for w in fresh.writes for m in parse_wire(fresh, w)]
    twin.runtime.events.close()


def uncooked(message) -> dict:
    """A message as a dict, but for its cookie (each run of segctl salts its own)."""
    body = dict(next(iter(message.to_jsondict().values())))
    body.pop("cookie", None)
    return body


def test_held_writes_go_when_the_green_thread_yields_or_before_a_write_not_held():
    switches = OpenFlowSwitches()
    one, two = Datapath(1), Datapath(2)
    switches.connected(1, one)
    switches.connected(2, two)
    switches.holding = True
    switches.send([Barrier(1), Barrier(2)])
    switches.send([Barrier(1)])
    assert one.writes == two.writes == []
    switches.holding = False
    switches.send([Barrier(1)])  # after what is held for it, in the same write
    assert [squeezed(parse_wire(one, w)) for w in one.writes] == [["barrier"]] and len(one.writes[0]) == 24
    assert two.writes == []
    hub.sleep(0)
    assert len(two.writes) == 1 and len(one.writes) == 1
    switches.holding = True
    switches.send([Barrier(2)])
    assert switches.disconnected(2, two)  # gone: what was held for it too
    hub.sleep(0)
    assert len(two.writes) == 1


def test_no_more_than_the_hold_limit_is_held_for_a_switch(monkeypatch):
    monkeypatch.setattr(app_module, "HOLD_LIMIT", 40)
    switches = OpenFlowSwitches()
    one = Datapath(1)
    switches.connected(1, one)
    switches.holding = True
    for _ in range(6):
        switches.send([Barrier(1)])
    assert [len(w) for w in one.writes] == [48]  # 5 * 8 bytes held, the 6th goes with them
    switches.flush()  # (nothing held)
    assert [len(w) for w in one.writes] == [48]
