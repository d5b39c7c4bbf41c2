"""The Ryu application: a thin shell that turns OpenFlow events into core calls and the core's
plain messages into OpenFlow messages. All decisions live in segctl.core.controller."""

from __future__ import annotations

import functools
import logging
import os
import time
from typing import Any

from . import ofmsg
from .core.discovery import INTERVAL as DISCOVERY_INTERVAL
from .core.fabric import DISCOVERY_SLICES
from .core.flows import Barrier, FlowStatsRequest, ObservedEntry
from .core.messages import SwitchMessage
from .framework import (
    CONFIG_DISPATCHER,
    DEAD_DISPATCHER,
    MAIN_DISPATCHER,
    App,
    hub,
    install_fast_paths,
    more_to_read,
    ofp_event,
    ofproto_v1_3,
    set_ev_cls,
    wrap_socket,
    write,
)
from .runtime import ACTIONS, Confirmation, Runtime

LOG = logging.getLogger("segctl.app")
# OpenFlow 1.3's reasons for a FlowRemoved, by number, as the core names them.
_REMOVED_REASONS = {0: "idle_timeout", 1: "hard_timeout", 2: "delete", 3: "group_delete", 4: "meter_delete"}
EVENTS_FLUSH_INTERVAL = 0.1  # seconds; how stale events.jsonl may be
FLOW_RECORD_TICK = 0.1  # seconds between two asks whether the flow store's batch is due
AUDIT_TICK = 0.25  # seconds between two asks whether a switch's flow table is due for a read
ACTION_WAIT = 0.005  # seconds between two looks whether the actions under way have ended
HOLD_LIMIT = 262144  # bytes held for a switch (OpenFlowSwitches.holding) before they go anyway


def _text(field: Any) -> str:
    """A description field as Ryu gives it (bytes padded with NULs, or str)."""
    if isinstance(field, bytes):
        field = field.split(b"\0", 1)[0].decode("ascii", "replace")
    return str(field)


def fail_fast(handler):
    """Ryu logs a handler's exception and carries on, which could silently skip a revocation.
    A segctl handler that raises stops the controller instead: switches are fail-secure."""

    @functools.wraps(handler)
    def wrapper(self, *args):
        try:
            return handler(self, *args)
        except Exception:  # noqa: BLE001 - anything here is a bug; stop loudly
            LOG.critical("handler %s failed; stopping the controller", handler.__name__, exc_info=True)
            self.runtime.events.close()
            logging.shutdown()
            os._exit(70)

    return wrapper


# Flow-table entries audited between two turns of the switches (a part of a switch's answer
# holds about 400: decoding and checking them at once held packet-ins up 2-8 ms).
AUDIT_SLICE = 64


def _pause() -> None:
    """Between two parts of background work: what waits goes first, and an action under way
    (runtime.Actions) ends first."""
    hub.sleep(0)
    while ACTIONS.under_way:
        hub.sleep(ACTION_WAIT)


class OpenFlowSwitches:
    """The connected switches, as the runtime sees them: send a batch (one write per switch),
    or send it and wait for each switch to answer its barrier.

    While `holding` (a packet-in's answer, when more of its switch's messages are already read),
    what is sent is held and goes with what follows, in one write per switch: at the latest
    when the green thread yields (flush), sooner if a batch not held goes to that switch."""

    def __init__(self) -> None:
        self.datapaths: dict[int, Any] = {}
        self.holding = False
        self._held: dict[Any, bytearray] = {}  # datapath -> what is held for it, in order
        self._flush_due = False
        self._barriers: dict[tuple[int, int], Any] = {}
        self.reads: dict[int, int] = {}  # dpid -> xid of the flow-table read it is answering
        # dpid -> the entries of its last answer, by their record's bytes (but for counters):
        # an entry the switch still holds is not decoded again
        self.tables: dict[int, dict[bytes, ObservedEntry]] = {}
        self.answering: dict[int, dict[bytes, ObservedEntry]] = {}

    def connected(self, dpid: int, datapath: Any) -> None:
        self.datapaths[dpid] = datapath
        wrap_socket(datapath)

    def disconnected(self, dpid: int, datapath: Any) -> bool:
        """Forget the switch, unless a newer connection of it has replaced this one."""
        if self.datapaths.get(dpid) is not datapath:
            return False
        del self.datapaths[dpid]
        self._held.pop(datapath, None)
        self.reads.pop(dpid, None)
        self.tables.pop(dpid, None)
        return True

    def send(self, messages: list[SwitchMessage]) -> None:
        self._transmit(messages, confirm=False)

    def _transmit(self, messages: list[SwitchMessage], confirm: bool) -> dict:
        """Encode a batch and hand each switch its share as one write. With `confirm`, returns
        an event per switch that is set when that switch answers the batch's barrier."""
        chunks: dict[int, list[bytes]] = {}
        waits = {}
        for message in ofmsg.order(messages):
            if message.dpid not in self.datapaths:
                continue
            if isinstance(message, Barrier):
                xid, data = ofmsg.encode_barrier()
                if confirm:
                    waits[message.dpid] = self._barriers[(message.dpid, xid)] = hub.Event()
            elif isinstance(message, FlowStatsRequest):
                self.reads[message.dpid], data = ofmsg.encode_flow_stats_request()
                self.answering.pop(message.dpid, None)
            else:
                data = ofmsg.encode(message)
            chunks.setdefault(message.dpid, []).append(data)
        hold = self.holding and not confirm
        for dpid, parts in chunks.items():
            self._write(self.datapaths[dpid], b"".join(parts), hold)
        return waits

    def _write(self, datapath: Any, data: bytes | bytearray, hold: bool) -> None:
        """Write after what is held for the switch, or hold this too."""
        held = self._held.get(datapath)
        if hold and (held is None or len(held) < HOLD_LIMIT):
            if held is None:
                self._held[datapath] = bytearray(data)
                if not self._flush_due:
                    self._flush_due = True
                    hub.spawn(self.flush)
            else:
                held += data
            return
        if held is not None:
            del self._held[datapath]
            held += data
            data = held
        write(datapath, data)

    def flush(self) -> None:
        """Write what is held. (One switch at a time, each taken only when it is written: a write
        that waits for the switch is queued before anything sent to it meanwhile.)"""
        self._flush_due = False
        while self._held:
            datapath, data = self._held.popitem()
            write(datapath, data)

    def send_and_confirm(self, messages: list[SwitchMessage], timeout: float = 5.0) -> Confirmation:
        """Send, then wait until every switch that got a barrier has answered it (or the
        timeout passed). Returns the switches that confirmed and those that did not."""
        waits = self._transmit(messages, confirm=True)
        deadline = time.monotonic() + timeout
        for event in waits.values():
            event.wait(timeout=max(0.0, deadline - time.monotonic()))
        confirmed = sorted(dpid for dpid, event in waits.items() if event.is_set())
        for key in [key for key, event in self._barriers.items() if event in waits.values() and not event.is_set()]:
            del self._barriers[key]  # a switch that never answered must not leave its waiter behind
        return {"confirmed": confirmed, "unconfirmed": sorted(set(waits) - set(confirmed))}

    def read_answer(self, dpid: int, part: bytes, offset: int = 0) -> tuple[bool, list[ObservedEntry], int | None]:
        """A slice (AUDIT_SLICE entries from `offset`) of one part of the answer to the switch's
        flow-table read, decoded: (more parts follow, its entries, where the part's next slice
        starts or None). What the switch's last answer held is not decoded again; after the
        last part, this answer is what the next one is held against."""
        seen = self.answering.setdefault(dpid, {})
        more, entries, offset_next = ofmsg.decode_flow_stats_slice(
            part, AUDIT_SLICE, self.tables.get(dpid), seen, offset
        )
        if not more and offset_next is None:
            del self.reads[dpid]
            self.tables[dpid] = self.answering.pop(dpid)
        return more, entries, offset_next

    def barrier_answered(self, dpid: int, xid: int) -> None:
        event = self._barriers.pop((dpid, xid), None)
        if event is not None:
            event.set()


class SegctlApp(App):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, segctl_runtime=None, segctl_switches=None, **kwargs):
        super().__init__(*args, **kwargs)
        if segctl_runtime is None or segctl_switches is None:
            raise RuntimeError("SegctlApp is started by `segctl run`, not by ryu-manager")
        self.runtime: Runtime = segctl_runtime
        self.switches: OpenFlowSwitches = segctl_switches
        self.core = segctl_runtime.controller
        install_fast_paths()
        self.answers = hub.Queue()  # flow-table answers (dpid, xid, part), audited by their own thread

    def start(self):
        thread = super().start()
        self.threads.append(hub.spawn(self._discover_links_forever))
        self.threads.append(hub.spawn(self._flush_events_forever))
        self.threads.append(hub.spawn(self._refresh_directory_forever))
        self.threads.append(hub.spawn(self._audit_forever))
        self.threads.append(hub.spawn(self._audit_answers_forever))
        if self.runtime.recorder is not None:
            self.threads.append(hub.spawn(self._record_flows_forever))
        return thread

    def _flush_events_forever(self):
        while True:
            hub.sleep(EVENTS_FLUSH_INTERVAL)
            if not ACTIONS.under_way:  # (put off while an action waits for its switches)
                self.runtime.events.flush()

    def _record_flows_forever(self):
        """Batches of decisions into the flow store: every second, sooner when many wait (not
        while an action waits for its switches)."""
        recorder = self.runtime.recorder
        while True:
            hub.sleep(FLOW_RECORD_TICK)
            if recorder is not None and recorder.due() and not ACTIONS.under_way:
                try:
                    recorder.flush(pause=_pause)
                except Exception:  # noqa: BLE001 - a bug in recording must not stop enforcement
                    LOG.exception("flow store: recording failed")

    @fail_fast
    def _discover_links_forever(self):
        """segctl's own signed LLDP probes: each live port once a second, a slice of the ports
        every tenth of a second."""
        while True:
            hub.sleep(DISCOVERY_INTERVAL / DISCOVERY_SLICES)
            self.runtime.apply(self.core.discover(time.time()))
            self.runtime.save_if_links_changed()  # (a restart remembers them: see Ledger.link_ends)

    @fail_fast
    def _audit_forever(self):
        """The flow-table audit: the core says which switch's table to read when."""
        while True:
            hub.sleep(AUDIT_TICK)
            if not ACTIONS.under_way:  # (a read's answer would be audited between the barriers)
                self.runtime.apply(self.core.audit_due(time.time()))

    @fail_fast
    def _refresh_directory_forever(self):
        """Re-read a remote directory (LDAP) on the cache's schedule; the read itself runs in an
        OS thread so packet-ins are served meanwhile."""
        while True:
            hub.sleep(self.runtime.next_refresh_in(time.time()))
            self.runtime.refresh_directory()

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev):
        self.switches.barrier_answered(ev.msg.datapath.id, ev.msg.xid)

    # -- switches ----------------------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    @fail_fast
    def _state_change(self, ev):
        datapath = ev.datapath
        if datapath.id is None:
            return
        if ev.state == MAIN_DISPATCHER:
            self.switches.connected(datapath.id, datapath)
            ofp = datapath.ofproto
            ports = [
                p.port_no
                for p in datapath.ports.values()
                if p.port_no <= ofp.OFPP_MAX
                and not p.state & ofp.OFPPS_LINK_DOWN
                and not p.config & ofp.OFPPC_PORT_DOWN
            ]
            self.runtime.apply(self.core.switch_up(datapath.id, ports, time.time()))
            # What it is: Open vSwitch tracks connections (the stateful pipeline's `auto`).
            datapath.send(ofmsg.encode_desc_request())
        elif self.switches.disconnected(datapath.id, datapath):
            self.runtime.apply(self.core.switch_down(datapath.id, time.time()))

    @set_ev_cls(ofp_event.EventOFPDescStatsReply, MAIN_DISPATCHER)
    @fail_fast
    def _description(self, ev):
        body = ev.msg.body
        hardware, software = (_text(body.hw_desc), _text(body.sw_desc)) if body is not None else ("", "")
        self.runtime.apply(self.core.switch_described(ev.msg.datapath.id, hardware, software, time.time()))

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev):
        LOG.info("switch %016x connected", ev.msg.datapath_id)

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    @fail_fast
    def _port_status(self, ev):
        msg = ev.msg
        ofp = msg.datapath.ofproto
        desc = msg.desc
        if desc.port_no > ofp.OFPP_MAX:
            return
        live = (
            msg.reason != ofp.OFPPR_DELETE
            and not desc.state & ofp.OFPPS_LINK_DOWN
            and not desc.config & ofp.OFPPC_PORT_DOWN
        )
        self.runtime.apply(self.core.port_changed(msg.datapath.id, desc.port_no, live, time.time()))

    # -- packets and flow expiry -------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    @fail_fast
    def _packet_in(self, ev):
        msg = ev.msg
        in_port = msg.in_port  # (framework.OFPPacketIn: read from the bytes)
        if in_port is None or msg.datapath.id not in self.switches.datapaths:
            return
        # More of this switch's messages already read: its answer goes with theirs.
        self.switches.holding = more = more_to_read(msg.datapath)
        self.runtime.apply(self.core.packet_in(msg.datapath.id, in_port, msg.data, time.time()))
        self.switches.holding = False
        if not more:
            self.switches.flush()

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    @fail_fast
    def _flow_removed(self, ev):
        msg = ev.msg
        reason = _REMOVED_REASONS.get(msg.reason, "other")
        counts = (msg.packet_count, msg.byte_count)
        self.runtime.apply(self.core.flow_removed(msg.datapath.id, msg.cookie, time.time(), reason, counts))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats(self, ev):
        """One part of a switch's flow table (framework.py keeps the framework from building an
        object per entry): queued for the audit's own thread, so that packet-ins are served
        between the parts of a large table instead of waiting for all of it."""
        msg = ev.msg
        self.answers.put((msg.datapath, msg.xid, msg.buf))

    @fail_fast
    def _audit_answers_forever(self):
        while True:
            self._audit_answer(*self.answers.get())
            _pause()  # the packet-ins that came meanwhile go first, and any action under way ends

    def _audit_answer(self, datapath, xid: int, part: bytes) -> None:
        """Decode one part (what the switch's last answer held is not decoded again) and audit
        it, a slice at a time: the packet-ins that come meanwhile go first."""
        switches = self.switches
        dpid = datapath.id
        offset: int | None = 0
        while offset is not None:
            if switches.reads.get(dpid) != xid or switches.datapaths.get(dpid) is not datapath:
                return  # an answer to no read of ours, or to a connection of the switch now gone
            more, entries, offset = switches.read_answer(dpid, part, offset)
            now = time.time()
            self.runtime.apply(self.core.audit_observe(dpid, entries, now))
            if offset is not None:
                _pause()
        if not more:
            self.runtime.apply(self.core.audit_finish(dpid, now))

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _error(self, ev):
        msg = ev.msg
        LOG.error("switch %s rejected a message: type=%s code=%s", msg.datapath.id, msg.type, msg.code)
