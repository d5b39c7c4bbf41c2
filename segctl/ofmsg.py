"""Turns segctl's plain flow descriptions into OpenFlow 1.3 wire messages.

The only module that builds OpenFlow messages. It encodes them with struct, straight to bytes:
building Ryu's message objects cost more than all of segctl's decision (see BENCHMARKS.md), and
a flow setup sends three of them. tests/unit/test_ofmsg.py checks every byte against Ryu's own
encoder. Every entry is checked against its band of the pipeline (segctl.core.pipeline) before it
is encoded. It also orders a batch the way a switch should see it: deletions before additions on
each switch, duplicates dropped, barriers last."""

from __future__ import annotations

import functools
import itertools
import operator
import socket
import struct
from collections.abc import Mapping
from typing import Any

from .core.flows import (
    Barrier,
    EntryDelete,
    FlowAdd,
    FlowDelete,
    MetersClear,
    MeterSet,
    ObservedEntry,
    PacketOut,
    SwitchConfig,
)
from .core.pipeline import check_entry

VERSION = 4
OFPT_SET_CONFIG, OFPT_PACKET_OUT, OFPT_FLOW_MOD, OFPT_BARRIER_REQUEST, OFPT_METER_MOD = 9, 13, 14, 20, 29
OFPT_MULTIPART_REQUEST, OFPT_MULTIPART_REPLY = 18, 19
OFPMP_DESC, OFPMP_FLOW = 0, 1
OFPMPF_REPLY_MORE = 1
OFPC_FRAG_NX_MATCH = 3  # Open vSwitch: fragments keep their transport fields (first) or have none
OFPMC_ADD, OFPMC_DELETE = 0, 2
OFPMF_PKTPS, OFPMF_BURST = 2, 4
OFPMBT_DROP = 1
OFPM_ALL = 0xFFFFFFFF
OFPIT_METER = 6
OFPFC_ADD, OFPFC_DELETE, OFPFC_DELETE_STRICT = 0, 3, 4
OFPFF_SEND_FLOW_REM = 1
OFPTT_ALL = 0xFF
OFPP_IN_PORT, OFPP_CONTROLLER, OFPP_ANY = 0xFFFFFFF8, 0xFFFFFFFD, 0xFFFFFFFF
OFPG_ANY = 0xFFFFFFFF
OFP_NO_BUFFER = 0xFFFFFFFF
EXACT_COOKIE = (1 << 64) - 1  # a cookie mask: that cookie only
OFPCML_NO_BUFFER = 0xFFFF
OFP_DEFAULT_PRIORITY = 0x8000  # ignored by a non-strict delete; what Ryu writes
OFPIT_APPLY_ACTIONS = 4

_HEADER = struct.Struct("!BBHI")
_SET_CONFIG = struct.Struct("!BBHIHH")
_FLOW_MOD = struct.Struct("!BBHIQQBBHHHIIIH2x")  # header + flow-mod fixed part: 48 bytes
_PACKET_OUT = struct.Struct("!BBHIIIH6x")  # header + packet-out fixed part: 24 bytes
_OUTPUT = struct.Struct("!HHIH6x")
_APPLY = struct.Struct("!HH4x")
_METER_INSTRUCTION = struct.Struct("!HHI")
_METER_MOD = struct.Struct("!BBHIHHI")  # header + command, flags, meter id
_DROP_BAND = struct.Struct("!HHII4x")
_MULTIPART = struct.Struct("!BBHIHH4x")  # header + multipart type and flags
_FLOW_STATS_REQUEST = struct.Struct("!B3xII4xQQ")  # table, out_port, out_group, cookie, mask
_FLOW_STATS = struct.Struct("!HBxIIHHHH4xQQQ")  # one flow-stats record's fixed part: 48 bytes
_TLV = struct.Struct("!HH")

# Barriers and flow-stats requests carry xids from the top half of the space; Ryu numbers its
# own requests from 1.
_xids = itertools.count(0x80000000)


_first = operator.itemgetter(0)


def _mac(value: str) -> bytes:
    return bytes.fromhex(value.replace(":", ""))


OFPXMC_NXM_1, OFPXMC_OPENFLOW_BASIC = 0x0001, 0x8000
_U8, _U16, _U32 = (struct.Struct(f).pack for f in ("!B", "!H", "!I"))

# OXM fields segctl matches on: name -> (class, field number, encoder). The names are Ryu's.
# Two are Open vSwitch (Nicira) extensions that OpenFlow 1.3 lacks: TCP flags, so that a reply
# entry never carries a SYN, and the fragment type, so that an allowed connection's later
# fragments (which have no ports) can be matched.
_OXM = {
    "in_port": (OFPXMC_OPENFLOW_BASIC, 0, _U32),
    "eth_dst": (OFPXMC_OPENFLOW_BASIC, 3, _mac),
    "eth_src": (OFPXMC_OPENFLOW_BASIC, 4, _mac),
    "eth_type": (OFPXMC_OPENFLOW_BASIC, 5, _U16),
    "ip_proto": (OFPXMC_OPENFLOW_BASIC, 10, _U8),
    "ipv4_src": (OFPXMC_OPENFLOW_BASIC, 11, socket.inet_aton),
    "ipv4_dst": (OFPXMC_OPENFLOW_BASIC, 12, socket.inet_aton),
    "tcp_src": (OFPXMC_OPENFLOW_BASIC, 13, _U16),
    "tcp_dst": (OFPXMC_OPENFLOW_BASIC, 14, _U16),
    "udp_src": (OFPXMC_OPENFLOW_BASIC, 15, _U16),
    "udp_dst": (OFPXMC_OPENFLOW_BASIC, 16, _U16),
    "icmpv4_type": (OFPXMC_OPENFLOW_BASIC, 19, _U8),
    "icmpv4_code": (OFPXMC_OPENFLOW_BASIC, 20, _U8),
    "ip_frag": (OFPXMC_NXM_1, 26, _U8),
    "tcp_flags_nxm": (OFPXMC_NXM_1, 34, _U16),
    "ct_state": (OFPXMC_NXM_1, 105, _U32),
}


@functools.lru_cache(maxsize=65536)
def _oxm(name: str, value) -> bytes:
    """The TLV of one field; a (value, mask) pair is a masked match."""
    oxm_class, number, encode = _OXM[name]
    if isinstance(value, tuple):
        payload, has_mask = encode(value[0]) + encode(value[1]), 1
    else:
        payload, has_mask = encode(value), 0
    header = oxm_class << 16 | number << 9 | has_mask << 8 | len(payload)
    return struct.pack("!I", header) + payload


@functools.lru_cache(maxsize=256)
def _wire_order(names: tuple) -> tuple:
    """Where each field of a match with these (sorted) names goes on the wire: OpenFlow-basic
    fields in field order, as Ryu writes them; the extensions after them, because Open vSwitch
    checks each field's prerequisites (IPv4, TCP) against the fields before it. A few shapes
    of match exist: each is worked out once."""

    def rank(at: int) -> tuple[bool, int]:
        oxm_class, number, _ = _OXM[names[at]]
        return oxm_class != OFPXMC_OPENFLOW_BASIC, number

    return tuple(sorted(range(len(names)), key=rank))


def encode_match(match: tuple) -> bytes:
    """An OXM match, padded to 8 bytes."""
    fields = b"".join([_oxm(*match[at]) for at in _wire_order(tuple(map(_first, match)))])
    length = 4 + len(fields)
    return struct.pack("!HH", 1, length) + fields + b"\0" * (-length % 8)


# Open vSwitch's connection tracking action (NXAST_CT): a Nicira experimenter action, 24 bytes with
# no nested actions: type, length, vendor, subtype, flags, zone source (0: the zone is immediate),
# zone, table to carry on in (NX_CT_RECIRC_NONE: none, go on with the action list), pad, ALG.
OFPAT_EXPERIMENTER = 0xFFFF
NX_VENDOR_ID = 0x00002320
NXAST_CT = 35
NX_CT_F_COMMIT = 1
NX_CT_RECIRC_NONE = 0xFF
_CT = struct.Struct("!HHIHHIHB3xH")


def _ct(commit: bool, zone: int, table: int) -> bytes:
    flags = NX_CT_F_COMMIT if commit else 0
    return _CT.pack(OFPAT_EXPERIMENTER, _CT.size, NX_VENDOR_ID, NXAST_CT, flags, 0, zone, table, 0)


def _actions(actions: tuple) -> bytes:
    out = []
    for action in actions:
        if action[0] == "output":
            out.append(_OUTPUT.pack(0, 16, action[1], 0))
        elif action[0] == "controller":
            out.append(_OUTPUT.pack(0, 16, OFPP_CONTROLLER, OFPCML_NO_BUFFER))
        elif action[0] == "ct_commit":
            out.append(_ct(True, action[1], NX_CT_RECIRC_NONE))
        elif action[0] == "ct_track":
            out.append(_ct(False, action[1], action[2]))
    return b"".join(out)


def encode_instructions(actions: tuple, meter: int | None = None) -> bytes:
    """An entry's instructions: its meter, if any, then its actions (none: it drops)."""
    encoded = _actions(actions)
    instructions = _APPLY.pack(OFPIT_APPLY_ACTIONS, 8 + len(encoded)) + encoded if encoded else b""
    if meter is not None:
        instructions = _METER_INSTRUCTION.pack(OFPIT_METER, 8, meter) + instructions
    return instructions


def encode(message) -> bytes:
    """The wire bytes of a FlowAdd, FlowDelete or PacketOut (xid 0: nothing waits on them). A
    FlowAdd outside its band of the pipeline raises segctl.core.pipeline.OutsideBand."""
    if isinstance(message, FlowAdd):
        check_entry(message)
        match = encode_match(message.match)
        instructions = encode_instructions(message.actions, message.meter)
        flags = OFPFF_SEND_FLOW_REM if message.notify_removed else 0
        length = _FLOW_MOD.size + len(match) + len(instructions)
        head = _FLOW_MOD.pack(
            VERSION, OFPT_FLOW_MOD, length, 0, message.cookie, 0, message.table_id, OFPFC_ADD,
            message.idle_timeout, message.hard_timeout, message.priority, OFP_NO_BUFFER, 0, 0, flags,
        )  # fmt: skip
        return head + match + instructions
    if isinstance(message, FlowDelete):
        match = encode_match(message.match)
        head = _FLOW_MOD.pack(
            VERSION, OFPT_FLOW_MOD, _FLOW_MOD.size + len(match), 0, message.cookie, message.cookie_mask,
            OFPTT_ALL, OFPFC_DELETE, 0, 0, OFP_DEFAULT_PRIORITY, OFP_NO_BUFFER, OFPP_ANY, OFPG_ANY, 0,
        )  # fmt: skip
        return head + match
    if isinstance(message, EntryDelete):
        head = _FLOW_MOD.pack(
            VERSION, OFPT_FLOW_MOD, _FLOW_MOD.size + len(message.raw_match), 0, message.cookie, EXACT_COOKIE,
            message.table_id, OFPFC_DELETE_STRICT, 0, 0, message.priority, OFP_NO_BUFFER, OFPP_ANY, OFPG_ANY, 0,
        )  # fmt: skip
        return head + message.raw_match
    if isinstance(message, PacketOut):
        in_port = OFPP_CONTROLLER if message.in_port is None else message.in_port
        out_port = OFPP_IN_PORT if message.port == in_port else message.port
        action = _OUTPUT.pack(0, 16, out_port, 0)
        length = _PACKET_OUT.size + len(action) + len(message.data)
        head = _PACKET_OUT.pack(VERSION, OFPT_PACKET_OUT, length, 0, OFP_NO_BUFFER, in_port, len(action))
        return head + action + message.data
    if isinstance(message, MeterSet):
        band = _DROP_BAND.pack(OFPMBT_DROP, 16, message.rate, message.burst)
        flags = OFPMF_PKTPS | OFPMF_BURST
        # Delete first: adding an existing meter is an error, and a port may come back up.
        delete = _METER_MOD.pack(VERSION, OFPT_METER_MOD, 16, 0, OFPMC_DELETE, 0, message.meter_id)
        add = _METER_MOD.pack(VERSION, OFPT_METER_MOD, 16 + len(band), 0, OFPMC_ADD, flags, message.meter_id)
        return delete + add + band
    if isinstance(message, SwitchConfig):
        return _SET_CONFIG.pack(VERSION, OFPT_SET_CONFIG, _SET_CONFIG.size, 0, OFPC_FRAG_NX_MATCH, OFPCML_NO_BUFFER)
    if isinstance(message, MetersClear):
        return _METER_MOD.pack(VERSION, OFPT_METER_MOD, 16, 0, OFPMC_DELETE, 0, OFPM_ALL)
    raise TypeError(f"not a segctl message: {message!r}")


def encode_barrier() -> tuple[int, bytes]:
    """(xid, bytes) of a barrier request; the reply carries the same xid."""
    xid = next(_xids) & 0xFFFFFFFF
    return xid, _HEADER.pack(VERSION, OFPT_BARRIER_REQUEST, _HEADER.size, xid)


def encode_desc_request() -> bytes:
    """A request for the switch's description (maker, hardware, software: what it can do)."""
    return _MULTIPART.pack(VERSION, OFPT_MULTIPART_REQUEST, _MULTIPART.size, next(_xids) & 0xFFFFFFFF, OFPMP_DESC, 0)


def encode_flow_stats_request() -> tuple[int, bytes]:
    """(xid, bytes) of a request for every entry of every table; the replies carry the xid."""
    xid = next(_xids) & 0xFFFFFFFF
    body = _FLOW_STATS_REQUEST.pack(OFPTT_ALL, OFPP_ANY, OFPG_ANY, 0, 0) + encode_match(())
    return xid, _MULTIPART.pack(VERSION, OFPT_MULTIPART_REQUEST, _MULTIPART.size + len(body), xid, OFPMP_FLOW, 0) + body


# Decoding what a switch reports: the inverse of _OXM, for the fields segctl writes.
_DECODE_OXM = {(oxm_class, number): name for name, (oxm_class, number, _) in _OXM.items()}
_FIELD_VALUE = {
    "eth_dst": lambda raw: raw.hex(":"),
    "eth_src": lambda raw: raw.hex(":"),
    "ipv4_src": socket.inet_ntoa,
    "ipv4_dst": socket.inet_ntoa,
}
OFPAT_OUTPUT = 0
OFPXMC_EXPERIMENTER = 0xFFFF
# Open vSwitch reports TCP flags in OpenFlow 1.3 as the ONF extension (experimenter "ONF\0",
# field 42), whatever form they were written in: the same field as NXM_NX_TCP_FLAGS.
_EXPERIMENTER_FIELDS = {(0x4F4E4600, 42): "tcp_flags_nxm"}


def _int(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


@functools.lru_cache(maxsize=256)
def _field_of(header: int) -> tuple[str, Any, bool] | None:
    """(name, value decoder, masked) of an OXM header segctl knows; None for any other (an
    experimenter field is looked up with its experimenter id, see decode_match). The few
    headers a switch reports are worked out once each."""
    oxm_class, number, has_mask = header >> 16, (header >> 9) & 0x7F, bool((header >> 8) & 1)
    name = _DECODE_OXM.get((oxm_class, number))
    return None if name is None else (name, _FIELD_VALUE.get(name, _int), has_mask)


def decode_match(raw: bytes) -> tuple:
    """An OXM match (padded, as in a flow-stats record) in FlowAdd's terms: a sorted tuple of
    (name, value), (name, (value, mask)) for a masked field."""
    length = int.from_bytes(raw[2:4], "big")
    fields: list[tuple[str, Any]] = []
    offset = 4
    while offset + 4 <= length:
        header = int.from_bytes(raw[offset : offset + 4], "big")
        size = header & 0xFF
        payload = raw[offset + 4 : offset + 4 + size]
        offset += 4 + size
        known = _field_of(header)
        if known is None and header >> 16 == OFPXMC_EXPERIMENTER and size >= 4:
            name = _EXPERIMENTER_FIELDS.get((_int(payload[:4]), (header >> 9) & 0x7F))
            if name is not None:
                known, payload, size = (name, _int, bool((header >> 8) & 1)), payload[4:], size - 4
        if known is None:
            fields.append((f"oxm:{header >> 16:#x}:{(header >> 9) & 0x7F}", payload.hex()))
            continue
        name, to_value, masked = known
        if masked:
            half = size // 2
            fields.append((name, (to_value(payload[:half]), to_value(payload[half:]))))
        else:
            fields.append((name, to_value(payload)))
    fields.sort()
    return tuple(fields)


def _decode_instructions(raw: bytes) -> tuple[tuple, int | None]:
    """(actions, meter) of a record's instructions; what segctl never writes is named, not lost."""
    actions: list[tuple] = []
    meter = None
    offset = 0
    while offset + 4 <= len(raw):
        kind, length = _TLV.unpack_from(raw, offset)
        if length < 4:
            break
        if kind == OFPIT_METER:
            (meter,) = struct.unpack_from("!I", raw, offset + 4)
        elif kind == OFPIT_APPLY_ACTIONS:
            at = offset + 8
            while at + 4 <= offset + length:
                action, action_length = _TLV.unpack_from(raw, at)
                if action_length < 4:
                    break
                if action == OFPAT_OUTPUT:
                    (port,) = struct.unpack_from("!I", raw, at + 4)
                    actions.append(("controller",) if port == OFPP_CONTROLLER else ("output", port))
                elif action == OFPAT_EXPERIMENTER and action_length == _CT.size and at + _CT.size <= len(raw):
                    actions.append(_decode_ct(raw[at : at + _CT.size]))
                else:
                    actions.append((f"action:{action}",))
                at += action_length
        else:
            actions.append((f"instruction:{kind}",))
        offset += length
    return tuple(actions), meter


def _decode_ct(raw: bytes) -> tuple:
    """A Nicira conntrack action as segctl writes it, in FlowAdd's terms; anything else named."""
    _, _, vendor, subtype, flags, zone_src, zone, table, alg = _CT.unpack(raw)
    if (vendor, subtype, zone_src, alg) == (NX_VENDOR_ID, NXAST_CT, 0, 0):
        if flags == NX_CT_F_COMMIT and table == NX_CT_RECIRC_NONE:
            return ("ct_commit", zone)
        if flags == 0 and table != NX_CT_RECIRC_NONE:
            return ("ct_track", zone, table)
    return (f"action:{OFPAT_EXPERIMENTER}:{raw.hex()}",)


def decode_flow_stats(
    buf: bytes, known: Mapping[bytes, ObservedEntry] | None = None, seen: dict[bytes, ObservedEntry] | None = None
) -> tuple[bool, list[ObservedEntry]]:
    """One flow-stats reply: (more parts follow, its entries). A record found in `known` (the
    switch's previous answer: record bytes but for its counters -> entry) is not decoded
    again; every record of this answer goes into `seen`, for the next."""
    more, entries, _ = decode_flow_stats_slice(buf, None, known, seen)
    return more, entries


def decode_flow_stats_slice(
    buf: bytes,
    most: int | None,
    known: Mapping[bytes, ObservedEntry] | None = None,
    seen: dict[bytes, ObservedEntry] | None = None,
    offset: int = 0,
) -> tuple[bool, list[ObservedEntry], int | None]:
    """decode_flow_stats for at most `most` records (None: all), from `offset` (0: the reply's
    first record): (more parts follow, the entries, where the next slice starts or None when
    the reply is done). Lets a big answer be audited a slice at a time, the switches served between."""
    _, _, length, _, _, flags = _MULTIPART.unpack_from(buf, 0)
    entries: list[ObservedEntry] = []
    offset = offset or _MULTIPART.size
    while offset + _FLOW_STATS.size <= length:
        if most is not None and len(entries) >= most:
            return bool(flags & OFPMPF_REPLY_MORE), entries, offset
        size, table, _, _, priority, idle, hard, _, cookie, _, _ = _FLOW_STATS.unpack_from(buf, offset)
        if size < _FLOW_STATS.size:
            break
        # What the entry is (all but its age and counters), to look up before decoding it.
        identity = (
            bytes(buf[offset : offset + 4])
            + bytes(buf[offset + 12 : offset + 32])
            + bytes(buf[offset + 48 : offset + size])
        )
        entry = known.get(identity) if known is not None else None
        if entry is not None:
            entries.append(entry)
            if seen is not None:
                seen[identity] = entry
            offset += size
            continue
        match_at = offset + _FLOW_STATS.size
        _, match_length = _TLV.unpack_from(buf, match_at)
        padded = match_length + (-match_length % 8)
        raw_match = bytes(buf[match_at : match_at + padded])
        actions, meter = _decode_instructions(bytes(buf[match_at + padded : offset + size]))
        entry = ObservedEntry(table, priority, cookie, idle, hard, decode_match(raw_match), actions, meter, raw_match)
        entries.append(entry)
        if seen is not None:
            seen[identity] = entry
        offset += size
    return bool(flags & OFPMPF_REPLY_MORE), entries, None


def encode_flow_stats_reply(entries: list, xid: int = 0, more: bool = False, table_id: int | None = None) -> bytes:
    """What a switch answers a flow-stats request with, for FlowAdd-like entries, each in its
    own table unless `table_id` says (the emulator and the tests play switches with it; segctl
    itself only decodes such replies)."""
    records = []
    for entry in entries:
        table = getattr(entry, "table_id", 0) if table_id is None else table_id
        match = encode_match(entry.match)
        instructions = encode_instructions(entry.actions, entry.meter)
        size = _FLOW_STATS.size + len(match) + len(instructions)
        fixed = _FLOW_STATS.pack(
            size, table, 0, 0, entry.priority, entry.idle_timeout, entry.hard_timeout, 0, entry.cookie, 0, 0
        )
        records.append(fixed + match + instructions)
    body = b"".join(records)
    flags = OFPMPF_REPLY_MORE if more else 0
    return _MULTIPART.pack(VERSION, OFPT_MULTIPART_REPLY, _MULTIPART.size + len(body), xid, OFPMP_FLOW, flags) + body


def order(messages: list) -> list:
    """Per switch: deletions first, then meters, then additions and packet-outs in the order
    planned, duplicate entries dropped, and at most one barrier, at the end."""
    by_switch: dict[int, tuple[list, list, list]] = {}
    seen: set = set()
    for message in messages:
        deletes, rest, barrier = by_switch.setdefault(message.dpid, ([], [], []))
        if isinstance(message, Barrier):
            barrier[:] = [message]
        elif isinstance(message, (MetersClear, MeterSet, SwitchConfig)):
            deletes.append(message)  # after the entry deletions, before any entry that relies on them
        elif isinstance(message, (FlowDelete, EntryDelete)):
            if message not in seen:
                seen.add(message)
                deletes.append(message)
        elif isinstance(message, FlowAdd):
            if message not in seen:
                seen.add(message)
                rest.append(message)
        else:
            rest.append(message)
    ordered = []
    for deletes, rest, barrier in by_switch.values():
        ordered.extend(deletes + rest + barrier)
    return ordered
