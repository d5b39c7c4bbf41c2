"""`segctl explain`: the verdict the running controller would give the first packet of a
connection between two directory hosts, from the same `decide()` the controller calls.

Both hosts are placed on a network of their own (at their pins, if they have any), attached
and authenticated, with nothing else live: what is left to decide is the policy's answer.
"""

from __future__ import annotations

from .directory import Directory, Host
from .ledger import Ledger
from .packets import ETH_TYPE_IPV4, IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP, TCP_SYN, Frame, IPv4
from .policy import Policy
from .verdict import Verdict, decide

PROTOCOLS = {"tcp": IP_PROTO_TCP, "udp": IP_PROTO_UDP, "icmp": IP_PROTO_ICMP}
CLIENT_PORT = 49152  # the first ephemeral port: a client's source port is no part of policy
STAND_IN_ADDRESSES = ("192.0.2.1", "192.0.2.2")  # documentation addresses, for hosts without one
LINK_PORT = 0xFFFF00  # ports of the made-up links between two pinned switches


def first_packet(src: Host, dst: Host, proto: str, port: int, src_ip: str, dst_ip: str) -> Frame:
    """The first packet `src` would send: a TCP SYN, a UDP datagram, or an ICMP message of type
    `port` (code 0) for ICMP."""
    number = PROTOCOLS[proto]
    ip = IPv4(src_ip, dst_ip, number)
    if number == IP_PROTO_ICMP:
        ip.src_port, ip.dst_port = port, 0
    else:
        ip.src_port, ip.dst_port = CLIENT_PORT, port
        ip.tcp_flags = TCP_SYN if number == IP_PROTO_TCP else None
    return Frame(src.mac, dst.mac, ETH_TYPE_IPV4, ipv4=ip)


def explain_first_packet(directory: Directory, policy: Policy, src: Host, dst: Host, proto: str, port: int) -> Verdict:
    """The controller's verdict on the first packet from `src` to `dst` (proto/port; the
    ICMP type for icmp), with both attached and nothing else going on."""
    ledger = Ledger(directory, policy)
    src_at = (src.switch or 1, src.port or 1)
    dst_at = (dst.switch or 1, dst.port or (2 if src_at == (dst.switch or 1, 1) else 1))
    for dpid in {src_at[0], dst_at[0]}:
        ledger.topology.add_switch(dpid, [p for d, p in (src_at, dst_at) if d == dpid] + [LINK_PORT])
    if src_at[0] != dst_at[0]:
        ledger.topology.add_link(src_at[0], LINK_PORT, dst_at[0], LINK_PORT)
    addresses = {}
    for host, at, stand_in in ((src, src_at, STAND_IN_ADDRESSES[0]), (dst, dst_at, STAND_IN_ADDRESSES[1])):
        addresses[host.mac] = host.ip or stand_in
        ledger.bindings.admit(directory, host.mac, at[0], at[1], addresses[host.mac], 0.0)
    frame = first_packet(src, dst, proto, port, addresses[src.mac], addresses[dst.mac])
    return decide(ledger, src_at, frame, b"", src, detailed=True)
