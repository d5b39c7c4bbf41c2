"""Just enough OpenFlow 1.3 on the wire for a switch emulator: the handshake replies a switch
sends, packet-ins built once and patched per flow, and reading a flow's key back out of the
controller's packet-outs and flow-mods. Plain struct, so the emulator stays cheap."""

from __future__ import annotations

import socket
import struct

VERSION = 4
HEADER = struct.Struct("!BBHI")

HELLO, ERROR, ECHO_REQUEST, ECHO_REPLY = 0, 1, 2, 3
FEATURES_REQUEST, FEATURES_REPLY = 5, 6
GET_CONFIG_REQUEST, GET_CONFIG_REPLY, SET_CONFIG = 7, 8, 9
PACKET_IN, PORT_STATUS, PACKET_OUT, FLOW_MOD = 10, 12, 13, 14
MULTIPART_REQUEST, MULTIPART_REPLY = 18, 19
BARRIER_REQUEST, BARRIER_REPLY = 20, 21
ROLE_REQUEST, ROLE_REPLY = 24, 25
MP_DESC, MP_PORT_DESC = 0, 13

NO_BUFFER = 0xFFFFFFFF
OXM_IN_PORT = 0x80000004  # class OPENFLOW_BASIC, field IN_PORT, 4 bytes
OXM_IPV4_SRC_FIELD, OXM_TCP_SRC_FIELD = 11, 13


def message(kind: int, body: bytes = b"", xid: int = 0) -> bytes:
    return HEADER.pack(VERSION, kind, HEADER.size + len(body), xid) + body


def features_reply(xid: int, dpid: int) -> bytes:
    return message(FEATURES_REPLY, struct.pack("!QIBB2xII", dpid, 0, 254, 0, 0x4F, 0), xid)


def port_desc_reply(xid: int, dpid: int, ports: int) -> bytes:
    body = struct.pack("!HH4x", MP_PORT_DESC, 0)
    for port in range(1, ports + 1):
        mac = struct.pack("!HI", 0x0200 | (dpid & 0xFF), port)
        name = f"s{dpid}-eth{port}".encode()[:15]
        # port_no, hw_addr, name, config, state (live), curr, advertised, supported, peer, speeds
        body += struct.pack("!I4x6s2x16sIIIIIIII", port, mac, name, 0, 0, 0x2820, 0, 0, 0, 10_000_000, 10_000_000)
    return message(MULTIPART_REPLY, body, xid)


def desc_reply(xid: int) -> bytes:
    text = [b"segctl bench".ljust(256, b"\0"), b"emulated switch".ljust(256, b"\0"), b"1".ljust(256, b"\0")]
    body = struct.pack("!HH4x", MP_DESC, 0) + b"".join(text) + b"0".ljust(32, b"\0") + b"bench".ljust(256, b"\0")
    return message(MULTIPART_REPLY, body, xid)


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def tcp_syn(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, src_port: int, dst_port: int) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", src_port, dst_port, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
    )
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + b"\x08\x00" + ip + tcp


def arp_announce(mac: str, ip: str) -> bytes:
    """A gratuitous ARP request, as a host sends when its interface comes up."""
    body = struct.pack(
        "!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac_bytes(mac), socket.inet_aton(ip), b"\0" * 6, socket.inet_aton(ip)
    )
    return b"\xff" * 6 + mac_bytes(mac) + b"\x08\x06" + body


def packet_in(in_port: int, frame: bytes) -> bytes:
    match = struct.pack("!HHII", 1, 12, OXM_IN_PORT, in_port) + b"\0" * 4  # 12 bytes, padded to 16
    body = struct.pack("!IHBBQ", NO_BUFFER, len(frame), 0, 0, 0) + match + b"\0\0" + frame
    return message(PACKET_IN, body)


# Where a TCP frame's (IPv4 source, TCP source port) sit inside a packet-in built above.
PACKET_IN_FRAME_OFFSET = 8 + 16 + 16 + 2
TCP_SRC_IN_FRAME = 34


def frame_key(frame: bytes) -> bytes | None:
    """(IPv4 source, TCP source port) of a TCP/IPv4 frame, as 6 bytes."""
    if len(frame) < 36 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return None
    return frame[26:30] + frame[34:36]


def packet_out_key(msg: bytes) -> bytes | None:
    actions_len = struct.unpack_from("!H", msg, 16)[0]
    return frame_key(msg[24 + actions_len :])


DENY_PRIORITY = 30000  # segctl's band for a denied flow's drop (other drops answer no packet)


def flow_mod_drop_key(msg: bytes) -> bytes | None:
    """The key of a flow-mod that drops one denied TCP flow (no instructions, the deny band),
    else None. (A connection's drop for its server side's SYN is no answer to any packet.)"""
    if struct.unpack_from("!H", msg, 30)[0] != DENY_PRIORITY:
        return None
    match_len = struct.unpack_from("!H", msg, 50)[0]
    padded = (match_len + 7) // 8 * 8
    if len(msg) > 48 + padded:
        return None  # it has instructions: a forwarding entry, not a drop
    ip_src = tcp_src = None
    offset, end = 52, 48 + match_len
    while offset + 4 <= end:
        header = struct.unpack_from("!I", msg, offset)[0]
        field, length = (header >> 9) & 0x7F, header & 0xFF
        if header >> 16 == 0x8000:
            if field == OXM_IPV4_SRC_FIELD:
                ip_src = msg[offset + 4 : offset + 8]
            elif field == OXM_TCP_SRC_FIELD:
                tcp_src = msg[offset + 4 : offset + 6]
        offset += 4 + length
    return ip_src + tcp_src if ip_src and tcp_src else None


# -- the flow table, read back -----------------------------------------------------------------
MP_FLOW = 1
FC_ADD, FC_DELETE, FC_DELETE_STRICT = 0, 3, 4
_RECORD = struct.Struct("!HBxIIHHHH4xQQQ")
PART_LIMIT = 60_000  # bytes of records per reply part (a switch splits large answers the same way)


def flow_stats_record(priority: int, idle: int, hard: int, cookie: int, match: bytes, instructions: bytes) -> bytes:
    size = _RECORD.size + len(match) + len(instructions)
    return _RECORD.pack(size, 0, 0, 0, priority, idle, hard, 0, cookie, 0, 0) + match + instructions


def record_cookie(record: bytes) -> int:
    return struct.unpack_from("!Q", record, 24)[0]


def flow_stats_replies(xid: int, records: list[bytes]) -> list[bytes]:
    """The answer to a flow-stats request: parts of at most PART_LIMIT bytes, all but the last
    flagged "more"."""
    parts: list[list[bytes]] = [[]]
    size = 0
    for record in records:
        if size + len(record) > PART_LIMIT and parts[-1]:
            parts.append([])
            size = 0
        parts[-1].append(record)
        size += len(record)
    return [
        message(MULTIPART_REPLY, struct.pack("!HH4x", MP_FLOW, 1 if n < len(parts) - 1 else 0) + b"".join(part), xid)
        for n, part in enumerate(parts)
    ]
