import struct

from hypothesis import given
from hypothesis import strategies as st

from segctl.core.packets import ARP_REPLY, build_arp, mac_bytes, parse_frame


def ipv4_frame(proto: int, l4: bytes, src="10.0.0.1", dst="10.0.0.2", vlan=None, flags_frag=0) -> bytes:
    import socket

    eth = mac_bytes("02:00:00:00:00:02") + mac_bytes("02:00:00:00:00:01")
    if vlan is not None:
        eth += struct.pack("!HH", 0x8100, vlan)
    eth += struct.pack("!H", 0x0800)
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(l4),
        1,
        flags_frag,
        64,
        proto,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return eth + header + l4


def test_arp_round_trip():
    frame = parse_frame(
        build_arp(
            ARP_REPLY,
            "02:00:00:00:00:01",
            "02:00:00:00:00:02",
            "02:00:00:00:00:01",
            "10.0.0.1",
            "02:00:00:00:00:02",
            "10.0.0.2",
        )
    )
    assert frame.eth_src == "02:00:00:00:00:01" and frame.arp.op == ARP_REPLY
    assert (frame.arp.sender_ip, frame.arp.target_ip, frame.arp.target_mac) == (
        "10.0.0.1",
        "10.0.0.2",
        "02:00:00:00:00:02",
    )


def test_tcp_udp_icmp_and_vlan():
    tcp = parse_frame(ipv4_frame(6, struct.pack("!HH", 40000, 443) + b"\0" * 16))
    assert (tcp.ipv4.proto, tcp.ipv4.src_port, tcp.ipv4.dst_port) == (6, 40000, 443)
    udp = parse_frame(ipv4_frame(17, struct.pack("!HHHH", 5353, 53, 8, 0), vlan=10))
    assert (udp.vlan, udp.ipv4.dst_port) == (10, 53)
    icmp = parse_frame(ipv4_frame(1, bytes([8, 0, 0, 0])))
    assert (icmp.ipv4.src_port, icmp.ipv4.dst_port) == (8, 0)


def test_truncated_and_fragmented_headers_leave_ports_unknown():
    assert parse_frame(ipv4_frame(6, b"\x01")).ipv4.dst_port is None
    later_fragment = parse_frame(ipv4_frame(6, struct.pack("!HH", 1, 2), flags_frag=10))
    assert later_fragment.ipv4.later_fragment and later_fragment.ipv4.dst_port is None
    assert parse_frame(b"\x00" * 13) is None


@given(st.binary(max_size=120))
def test_any_bytes_parse_without_raising(data):
    parse_frame(data)
    for eth_type in (b"\x08\x00", b"\x08\x06", b"\x81\x00"):
        parse_frame(data[:12].ljust(12, b"\0") + eth_type + data[12:])
