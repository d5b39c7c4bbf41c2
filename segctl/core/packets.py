"""Parsing and building the few frames the controller handles: Ethernet, ARP, IPv4, TCP, UDP, ICMP.

Written with `struct` so the decision path needs no framework and any byte string is safe to
hand to `parse_frame`: malformed input yields a Frame with fewer fields, never an exception.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

ETH_TYPE_IPV4 = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_VLAN = 0x8100
ETH_TYPE_LLDP = 0x88CC
ARP_REQUEST = 1
ARP_REPLY = 2
IP_PROTO_ICMP = 1
IP_PROTO_TCP = 6
IP_PROTO_UDP = 17
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"


# The text of the addresses seen lately, one string object per address: every connection (and
# both its directions' keys) between the same hosts then shares its hosts' address strings
# instead of holding copies. Bounded: past the limit it starts again.
_TEXTS: dict[str, str] = {}
TEXTS_LIMIT = 1 << 16


def _shared(text: str) -> str:
    shared = _TEXTS.get(text)
    if shared is None:
        if len(_TEXTS) >= TEXTS_LIMIT:
            _TEXTS.clear()
        shared = _TEXTS[text] = text
    return shared


def mac_text(raw: bytes) -> str:
    return _shared(raw.hex(":"))


def ip_text(raw: bytes) -> str:
    return _shared(socket.inet_ntoa(raw))


def mac_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


@dataclass(slots=True)
class Arp:
    op: int
    sender_mac: str
    sender_ip: str
    target_mac: str
    target_ip: str


@dataclass(slots=True)
class IPv4:
    src: str
    dst: str
    proto: int
    src_port: int | None = None  # tcp/udp source port, or ICMP type
    dst_port: int | None = None  # tcp/udp destination port, or ICMP code
    later_fragment: bool = False  # a fragment other than the first: no transport header
    header_cut: bool = False  # a first fragment whose TCP (20 bytes) or UDP (8) header is incomplete
    payload_at: int = 0  # offset of the transport header in the frame
    tcp_flags: int | None = None


@dataclass(slots=True)
class Frame:
    eth_src: str
    eth_dst: str
    eth_type: int
    vlan: int | None = None
    arp: Arp | None = None
    ipv4: IPv4 | None = None


def parse_frame(data: bytes) -> Frame | None:
    """Decode a frame; None when even the Ethernet header is incomplete."""
    if len(data) < 14:
        return None
    eth_dst, eth_src = mac_text(data[0:6]), mac_text(data[6:12])
    (eth_type,) = struct.unpack_from("!H", data, 12)
    offset = 14
    vlan = None
    if eth_type == ETH_TYPE_VLAN:
        if len(data) < 18:
            return Frame(eth_src, eth_dst, eth_type)
        tci, eth_type = struct.unpack_from("!HH", data, 14)
        vlan = tci & 0x0FFF
        offset = 18
    frame = Frame(eth_src, eth_dst, eth_type, vlan)
    if eth_type == ETH_TYPE_ARP:
        frame.arp = _parse_arp(data, offset)
    elif eth_type == ETH_TYPE_IPV4:
        frame.ipv4 = _parse_ipv4(data, offset)
    return frame


def _parse_arp(data: bytes, offset: int) -> Arp | None:
    if len(data) < offset + 28:
        return None
    htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", data, offset)
    if htype != 1 or ptype != ETH_TYPE_IPV4 or hlen != 6 or plen != 4:
        return None
    body = offset + 8
    return Arp(
        op=op,
        sender_mac=mac_text(data[body : body + 6]),
        sender_ip=ip_text(data[body + 6 : body + 10]),
        target_mac=mac_text(data[body + 10 : body + 16]),
        target_ip=ip_text(data[body + 16 : body + 20]),
    )


def _parse_ipv4(data: bytes, offset: int) -> IPv4 | None:
    if len(data) < offset + 20:
        return None
    version_ihl = data[offset]
    if version_ihl >> 4 != 4:
        return None
    header_len = (version_ihl & 0x0F) * 4
    if header_len < 20:
        return None
    (flags_fragment,) = struct.unpack_from("!H", data, offset + 6)
    proto = data[offset + 9]
    packet = IPv4(
        src=ip_text(data[offset + 12 : offset + 16]),
        dst=ip_text(data[offset + 16 : offset + 20]),
        proto=proto,
        later_fragment=bool(flags_fragment & 0x1FFF),
    )
    l4 = packet.payload_at = offset + header_len
    if packet.later_fragment:
        return packet
    if proto in (IP_PROTO_TCP, IP_PROTO_UDP):
        more_fragments = bool(flags_fragment & 0x2000)
        packet.header_cut = more_fragments and len(data) < l4 + (20 if proto == IP_PROTO_TCP else 8)
        if len(data) >= l4 + 4:
            packet.src_port, packet.dst_port = struct.unpack_from("!HH", data, l4)
        if proto == IP_PROTO_TCP and len(data) >= l4 + 14:
            packet.tcp_flags = data[l4 + 13]
    elif proto == IP_PROTO_ICMP and len(data) >= l4 + 2:
        packet.src_port, packet.dst_port = data[l4], data[l4 + 1]
    return packet


# ICMP errors: each quotes the header (and 8 bytes more) of the packet it is about.
ICMP_ERRORS = frozenset({3, 11, 12})  # destination unreachable, time exceeded, parameter problem


def quoted_packet(data: bytes, ip: IPv4) -> IPv4 | None:
    """The packet an ICMP error is about, from the header it quotes (None if it quotes none)."""
    if ip.proto != IP_PROTO_ICMP or ip.src_port not in ICMP_ERRORS or ip.later_fragment:
        return None
    return _parse_ipv4(data, ip.payload_at + 8)


TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10


def is_tcp_reply(ip: IPv4) -> bool:
    """A TCP segment of a live stream (ACK, no SYN, no RST): it opens nothing and ends nothing."""
    flags = ip.tcp_flags
    return flags is not None and bool(flags & TCP_ACK) and not flags & (TCP_SYN | TCP_RST)


def strays_from_server(ip: IPv4) -> bool:
    """A TCP segment with neither ACK nor RST: never part of a connection after its first SYN
    (a SYN opens one; a bare FIN or NULL segment probes ports). A TCP header too short to show
    its flags counts too: fail closed."""
    flags = ip.tcp_flags
    return ip.proto == IP_PROTO_TCP and (flags is None or not flags & (TCP_ACK | TCP_RST))


def build_arp(
    op: int, eth_src: str, eth_dst: str, sender_mac: str, sender_ip: str, target_mac: str, target_ip: str
) -> bytes:
    """An Ethernet II frame carrying one ARP message, padded to the 60-byte minimum."""
    frame = (
        mac_bytes(eth_dst)
        + mac_bytes(eth_src)
        + struct.pack("!H", ETH_TYPE_ARP)
        + struct.pack("!HHBBH", 1, ETH_TYPE_IPV4, 6, 4, op)
        + mac_bytes(sender_mac)
        + socket.inet_aton(sender_ip)
        + mac_bytes(target_mac)
        + socket.inet_aton(target_ip)
    )
    return frame + b"\x00" * (60 - len(frame))
