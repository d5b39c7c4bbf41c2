"""segctl's OpenFlow encoder, byte for byte against the framework's own OpenFlow 1.3 encoder."""

import dataclasses
import struct

import pytest

from segctl import framework, ofmsg
from segctl.core.flows import (
    Barrier,
    EntryDelete,
    FlowAdd,
    FlowDelete,
    MetersClear,
    MeterSet,
    PacketOut,
    SwitchConfig,
    entry_key,
    match_of,
)
from segctl.core.pipeline import (
    CONNECTION,
    DENY,
    FLOOD,
    FRAGMENTS,
    GUARD,
    MISS,
    PUNT,
    PUNT_METERED,
    QUARANTINE,
    SERVER_DROP,
    Kind,
    OutsideBand,
    make_cookie,
)

ofp = framework.ofproto_v1_3
ofproto_parser = framework.ofproto_parser
parser = framework.ofproto_v1_3_parser


class Datapath:
    ofproto = ofp
    ofproto_parser = parser
    id = 1


def ryu_bytes(msg) -> bytes:
    msg.xid = 0
    msg.serialize()
    return bytes(msg.buf)


def ryu_actions(actions):
    out = []
    for action in actions:
        if action[0] == "output":
            out.append(parser.OFPActionOutput(action[1], 0))
        else:
            out.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER))
    return out


def ryu_flow_add(m: FlowAdd):
    actions = ryu_actions(m.actions)
    return parser.OFPFlowMod(
        datapath=Datapath(),
        cookie=m.cookie,
        command=ofp.OFPFC_ADD,
        idle_timeout=m.idle_timeout,
        hard_timeout=m.hard_timeout,
        priority=m.priority,
        buffer_id=ofp.OFP_NO_BUFFER,
        flags=ofp.OFPFF_SEND_FLOW_REM if m.notify_removed else 0,
        match=parser.OFPMatch(**m.match_dict()),
        instructions=[parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)] if actions else [],
    )


COOKIE = make_cookie(Kind.CONNECTION, 3, 7)
WEB_TO_DB = dict(
    eth_src="02:00:00:00:00:01",
    eth_dst="02:00:00:00:00:02",
    eth_type=0x0800,
    ipv4_src="10.0.0.1",
    ipv4_dst="10.0.0.2",
)
# An entry of every band but the metered punts (their meter instruction has a test of its own).
ADDS = [
    MISS.entry(1),
    PUNT.entry(1, match_of(eth_type=0x0806)),
    CONNECTION.entry(
        1,
        match_of(in_port=1, ip_proto=6, tcp_src=40000, tcp_dst=22, **WEB_TO_DB),
        (("output", 2),),
        3,
        7,
        60,
        notify=True,
    ),
    DENY.entry(7, match_of(in_port=4, ip_proto=17, udp_src=53, udp_dst=5353, **WEB_TO_DB)),
    DENY.entry(7, match_of(in_port=4, ip_proto=1, icmpv4_type=8, icmpv4_code=0, **WEB_TO_DB)),
    GUARD.entry(7, match_of(in_port=4, eth_src="02:00:00:00:00:01", eth_type=0x0800, ipv4_src="10.0.0.9")),
    QUARANTINE.entry(7, match_of(eth_dst="02:00:00:00:00:01"), host_id=3),
    FLOOD.entry(7, match_of(in_port=4), hard=5),
    # The server side's segments with neither ACK nor RST (Nicira TCP flags, masked).
    SERVER_DROP.entry(
        2, match_of(in_port=3, ip_proto=6, tcp_src=22, tcp_dst=40000, tcp_flags_nxm=(0, 0x14), **WEB_TO_DB), (), 3, 7
    ),
    # Later fragments of one IP pair and protocol (Nicira fragment type, masked).
    FRAGMENTS.entry(2, match_of(in_port=3, ip_proto=17, ip_frag=3, **WEB_TO_DB), (("output", 1),), 3, 7, 30),
]


def match_fields(wire: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(fixed part, the match's TLVs, what follows the match) of an encoded flow mod."""
    length = struct.unpack_from("!H", wire, 50)[0]
    tlvs, at = [], 52
    while at < 48 + length:
        size = 4 + wire[at + 3]
        tlvs.append(wire[at : at + size])
        at += size
    return wire[:48], tlvs, wire[48 + length + (-length % 8) :]


@pytest.mark.parametrize("message", ADDS, ids=range(len(ADDS)))
def test_flow_adds_match_ryus_bytes(message):
    """Byte for byte, but for the order of extension fields: Ryu sorts them first, Open vSwitch
    wants them after the fields they depend on."""
    ours, ryus = ofmsg.encode(message), ryu_bytes(ryu_flow_add(message))
    if any(name in ("tcp_flags_nxm", "ip_frag") for name, _ in message.match):
        head, tlvs, rest = match_fields(ours)
        ryu_head, ryu_tlvs, ryu_rest = match_fields(ryus)
        assert (head, sorted(tlvs), rest) == (ryu_head, sorted(ryu_tlvs), ryu_rest)
        assert [tlv[:2] for tlv in tlvs][-1] == b"\x00\x01"  # the extension (class NXM_1) comes last
    else:
        assert ours == ryus


def test_flow_delete_matches_ryus_bytes():
    message = FlowDelete(1, COOKIE, (1 << 64) - 1, match_of(eth_src="02:00:00:00:00:01"))
    reference = parser.OFPFlowMod(
        datapath=Datapath(),
        cookie=message.cookie,
        cookie_mask=message.cookie_mask,
        table_id=ofp.OFPTT_ALL,
        command=ofp.OFPFC_DELETE,
        out_port=ofp.OFPP_ANY,
        out_group=ofp.OFPG_ANY,
        match=parser.OFPMatch(**message.match_dict()),
    )
    assert ofmsg.encode(message) == ryu_bytes(reference)


@pytest.mark.parametrize("in_port, expected_out", [(None, 3), (5, 3), (3, ofp.OFPP_IN_PORT)])
def test_packet_outs_match_ryus_bytes(in_port, expected_out):
    data = bytes(range(60))
    reference = parser.OFPPacketOut(
        datapath=Datapath(),
        buffer_id=ofp.OFP_NO_BUFFER,
        in_port=ofp.OFPP_CONTROLLER if in_port is None else in_port,
        actions=[parser.OFPActionOutput(expected_out, 0)],
        data=data,
    )
    assert ofmsg.encode(PacketOut(1, 3, data, in_port)) == ryu_bytes(reference)


def test_barriers_get_their_own_xids():
    (xid1, data1), (xid2, _) = ofmsg.encode_barrier(), ofmsg.encode_barrier()
    assert xid2 == xid1 + 1 and xid1 >= 0x80000000
    assert struct.unpack("!BBHI", data1) == (4, ofp.OFPT_BARRIER_REQUEST, 8, xid1)


def test_unknown_messages_are_refused():
    with pytest.raises(TypeError):
        ofmsg.encode(Barrier(1))


@pytest.mark.parametrize(
    "entry",
    [
        FlowAdd(1, 0, (), (), 9),  # not a segctl cookie
        FlowAdd(1, 1000, (), (), make_cookie(Kind.MISS)),  # the miss entry's kind at a punt's priority
        dataclasses.replace(ADDS[1], actions=()),  # a punt that drops
    ],
    ids=["foreign", "priority", "actions"],
)
def test_an_entry_outside_its_band_is_never_encoded(entry):
    with pytest.raises(OutsideBand):
        ofmsg.encode(entry)


def test_batches_are_ordered_deletes_first_and_deduplicated():
    a = FlowAdd(1, 1, (), (), 1)
    d = FlowDelete(1, 1, 1)
    batch = ofmsg.order([a, Barrier(1), d, a, FlowAdd(2, 1, (), (), 1), d, Barrier(2)])
    assert batch == [d, a, Barrier(1), FlowAdd(2, 1, (), (), 1), Barrier(2)]


def test_meters_match_ryus_bytes():
    delete = parser.OFPMeterMod(Datapath(), command=ofp.OFPMC_DELETE, flags=0, meter_id=7, bands=[])
    add = parser.OFPMeterMod(
        Datapath(),
        command=ofp.OFPMC_ADD,
        flags=ofp.OFPMF_PKTPS | ofp.OFPMF_BURST,
        meter_id=7,
        bands=[parser.OFPMeterBandDrop(rate=400, burst_size=1000)],
    )
    assert ofmsg.encode(MeterSet(1, 7, 400, 1000)) == ryu_bytes(delete) + ryu_bytes(add)
    clear = parser.OFPMeterMod(Datapath(), command=ofp.OFPMC_DELETE, flags=0, meter_id=ofp.OFPM_ALL, bands=[])
    assert ofmsg.encode(MetersClear(1)) == ryu_bytes(clear)


def test_a_metered_entry_matches_ryus_bytes():
    message = PUNT_METERED.entry(1, match_of(in_port=3, eth_type=0x0806), meter=3)
    reference = ryu_flow_add(message)
    reference.instructions.insert(0, parser.OFPInstructionMeter(3, ofp.OFPIT_METER))
    assert ofmsg.encode(message) == ryu_bytes(reference)


def test_switch_config_matches_ryus_bytes_and_asks_for_fragments_with_their_ports():
    reference = parser.OFPSetConfig(Datapath(), flags=3, miss_send_len=ofp.OFPCML_NO_BUFFER)
    assert ofmsg.encode(SwitchConfig(1)) == ryu_bytes(reference)
    batch = ofmsg.order([FlowAdd(1, 0, (), (), 1), SwitchConfig(1), Barrier(1)])
    assert isinstance(batch[0], SwitchConfig)  # before any entry that relies on it


# -- the flow-table audit's messages -------------------------------------------------------------
def test_a_flow_stats_request_matches_ryus_bytes_and_asks_for_every_table():
    xid, ours = ofmsg.encode_flow_stats_request()
    reference = parser.OFPFlowStatsRequest(
        datapath=Datapath(), table_id=ofp.OFPTT_ALL, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY
    )
    reference.xid = xid
    reference.serialize()
    assert ours == bytes(reference.buf)
    assert ofmsg.encode_flow_stats_request()[0] != xid


def test_an_entry_delete_is_ryus_strict_delete_of_that_entry_in_that_table():
    match = match_of(in_port=3, ip_proto=17, ip_frag=3, **WEB_TO_DB)
    message = EntryDelete(1, 4, 20000, ofmsg.encode_match(match), COOKIE)
    (version, kind, length, xid), msg = ryu_parse(ofmsg.encode(message))
    assert (msg.command, msg.table_id, msg.priority) == (ofp.OFPFC_DELETE_STRICT, 4, 20000)
    assert (msg.out_port, msg.out_group) == (ofp.OFPP_ANY, ofp.OFPG_ANY)
    assert (msg.cookie, msg.cookie_mask) == (COOKIE, 2**64 - 1)  # that entry only, not a newer one
    assert dict(msg.match.items())["ipv4_dst"] == "10.0.0.2"


def ryu_parse(wire: bytes):
    """(header, message) as the framework parses what a switch receives."""
    header = ofproto_parser.header(wire)
    return header, ofproto_parser.msg(Datapath(), *header, wire)


@pytest.mark.parametrize("message", ADDS, ids=range(len(ADDS)))
def test_a_flow_stats_record_reads_back_as_the_entry_it_reports(message):
    """Each entry segctl writes, as a switch reports it (checked with Ryu's own record parser),
    decodes to exactly the entry: the audit's "is this ours" compares these keys."""
    reply = ofmsg.encode_flow_stats_reply([message], xid=9)
    record = parser.OFPFlowStats.parser(reply, 16)
    assert (record.priority, record.cookie, record.idle_timeout, record.hard_timeout) == (
        message.priority,
        message.cookie,
        message.idle_timeout,
        message.hard_timeout,
    )
    assert dict(record.match.items()) == {
        name: value for name, value in message.match if name not in ("tcp_flags_nxm", "ip_frag")
    } | {name: value for name, value in record.match.items() if name in ("tcp_flags_nxm", "ip_frag")}
    more, (entry,) = ofmsg.decode_flow_stats(reply)
    assert not more and entry.table_id == 0
    assert entry.key() == entry_key(message)
    assert entry.raw_match == ofmsg.encode_match(message.match)


def test_fields_and_actions_segctl_never_writes_are_named_not_lost():
    """A hand-written entry: a VLAN match (field 6) and a set-field action (25) decode as
    themselves, so they never equal an entry of segctl's."""
    match = struct.pack("!HH", 1, 10) + struct.pack("!IH", 0x80000C02, 0x1064) + b"\0" * 6
    action = struct.pack("!HH4x", 25, 8)
    instructions = struct.pack("!HH4x", 4, 8 + len(action)) + action + struct.pack("!HH4x", 1, 8)
    fixed = struct.Struct("!HBxIIHHHH4xQQQ")
    record = fixed.pack(fixed.size + len(match) + len(instructions), 2, 0, 0, 7, 0, 0, 0, 0, 0, 0)
    body = record + match + instructions
    reply = struct.pack("!BBHIHH4x", 4, 19, 16 + len(body), 0, 1, 1) + body
    more, (entry,) = ofmsg.decode_flow_stats(reply)
    assert more and (entry.table_id, entry.priority) == (2, 7)
    assert entry.match == (("oxm:0x8000:6", "1064"),)
    assert entry.actions == (("action:25",), ("instruction:1",))


def test_the_framework_steps_over_flow_stats_records_and_keeps_the_bytes_for_segctl():
    """framework.py keeps Ryu from building an object per record: a reply of many entries
    costs the event loop next to nothing until segctl decodes it, part by part."""
    reply = ofmsg.encode_flow_stats_reply(ADDS, xid=77, more=True)
    _, msg = ryu_parse(reply)
    assert msg.xid == 77 and msg.flags == ofp.OFPMPF_REPLY_MORE
    assert [type(record).__name__ for record in msg.body] == ["_UnreadFlowStats"] * len(ADDS)
    assert bytes(msg.buf) == reply
    assert [e.key() for e in ofmsg.decode_flow_stats(msg.buf)[1]] == [entry_key(m) for m in ADDS]


def test_tcp_flags_as_open_vswitch_reports_them_read_as_segctls_field():
    """Written as NXM_NX_TCP_FLAGS, reported back in OpenFlow 1.3 as ONF's experimenter field
    (what a Mininet run showed): the same match."""
    onf = struct.pack("!IIHH", 0xFFFF5508, 0x4F4E4600, 0x0000, 0x0014)  # class, field 42, mask, 8 bytes
    body = struct.pack("!IB", 0x80001401, 6)  # ip_proto=6
    fields = body + onf
    raw = struct.pack("!HH", 1, 4 + len(fields)) + fields
    raw += b"\0" * (-len(raw) % 8)
    assert ofmsg.decode_match(raw) == (("ip_proto", 6), ("tcp_flags_nxm", (0, 0x14)))
