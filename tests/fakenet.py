"""A small fabric for driving the controller core in tests: two leaves, two spines, three hosts,
frame builders, and a trace of where a packet would go."""

import socket
import struct

from segctl.core.controller import Controller
from segctl.core.packets import ARP_REQUEST, BROADCAST_MAC, build_arp, mac_bytes, parse_frame

from .fakeswitch import FakeFabric
from .unit.helpers import directory, policy

WEB, DB, APP = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"
ROGUE = "02:00:00:00:00:99"
DIRECTORY = """
hosts:
  web: {mac: "02:00:00:00:00:01", ip: 10.0.0.1, labels: {role: web}}
  db:  {mac: "02:00:00:00:00:02", ip: 10.0.0.2, labels: {role: db}}
  app: {mac: "02:00:00:00:00:03", ip: 10.0.0.3, labels: {role: app}, switch: 2, port: 2}
"""
POLICY = """
rules:
  - {name: web-to-db, from: {role: web}, to: {role: db}, proto: tcp, ports: [5432]}
  - {name: ping-db, from: any, to: {role: db}, proto: icmp}
"""
LINKS = [(1, 10, 101, 1), (1, 11, 102, 1), (2, 10, 101, 2), (2, 11, 102, 2)]


def tcp(src_mac, dst_mac, src_ip, dst_ip, sport, dport, proto=6, flags=0x02) -> bytes:
    """A TCP segment (a SYN unless `flags` says otherwise), or a UDP datagram with proto=17."""
    if proto == 6:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0)
    else:
        l4 = struct.pack("!HH", sport, dport) + b"\0" * 16
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(l4),
        1,
        0,
        64,
        proto,
        0,
        socket.inet_aton(src_ip),
        socket.inet_aton(dst_ip),
    )
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + b"\x08\x00" + ip + l4


def icmp_echo(src_mac, dst_mac, src_ip, dst_ip) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 1, 0, socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + b"\x08\x00" + ip + bytes([8, 0]) + b"\0" * 6


def arp_request(mac, ip, target_ip, eth_src=None):
    return build_arp(ARP_REQUEST, eth_src or mac, BROADCAST_MAC, mac, ip, "00:00:00:00:00:00", target_ip)


def _is_first_fragment(data: bytes) -> bool:
    (flags_fragment,) = struct.unpack_from("!H", data, 20)
    return bool(flags_fragment & 0x2000) and not flags_fragment & 0x1FFF


def ipv4(src_mac, dst_mac, src_ip, dst_ip, proto, payload: bytes, flags_fragment: int = 0) -> bytes:
    """Any IPv4 packet; `flags_fragment` is the header's flags and fragment offset word."""
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        1,
        flags_fragment,
        64,
        proto,
        0,
        socket.inet_aton(src_ip),
        socket.inet_aton(dst_ip),
    )
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + b"\x08\x00" + header + payload


def icmp(src_mac, dst_mac, src_ip, dst_ip, icmp_type, code=0, body: bytes = b"\0" * 4) -> bytes:
    """An ICMP message; `body` follows type, code and checksum (an error carries the original
    header there, after 4 unused bytes)."""
    return ipv4(src_mac, dst_mac, src_ip, dst_ip, 1, bytes([icmp_type, code, 0, 0]) + body)


class Net:
    """Two leaves (1, 2) and two spines (101, 102); web at 1/1, db at 2/1, app at 2/2."""

    def __init__(self, policy_text=POLICY, core=None):
        """`core`: a controller built elsewhere (from an LDAP directory, say) instead of the
        one from DIRECTORY and `policy_text`."""
        self.core = core or Controller(directory(DIRECTORY), policy(policy_text))
        self.fabric = FakeFabric(LINKS)
        self.now = 100.0
        for dpid, ports in ((1, [1, 2, 3, 10, 11]), (2, [1, 2, 10, 11]), (101, [1, 2]), (102, [1, 2])):
            self.fabric.apply(self.core.switch_up(dpid, ports, self.now))
        self.deliver_probes()  # the links are found the way the real controller finds them

    def deliver_probes(self) -> int:
        """Carry every LLDP probe the controller sent across the fabric's links, back to it as
        packet-ins; returns how many crossed a link."""
        probes = [p for p in self.fabric.packet_outs if p.data[12:14] == b"\x88\xcc"]
        self.fabric.packet_outs.clear()
        crossed = 0
        for probe in probes:
            peer = self.fabric.links.get((probe.dpid, probe.port))
            if peer is not None:
                crossed += 1
                self.fabric.apply(self.core.packet_in(*peer, probe.data, self.now))
        return crossed

    def send(self, dpid, port, data):
        self.now += 0.01
        return self.fabric.apply(self.core.packet_in(dpid, port, data, self.now))

    def announce(self):
        """Every host says who it is (by ARP), as a booting host does."""
        self.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
        self.send(2, 1, arp_request(DB, "10.0.0.2", "10.0.0.2"))
        self.send(2, 2, arp_request(APP, "10.0.0.3", "10.0.0.3"))

    def trace(self, dpid, port, data):
        frame = parse_frame(data)
        ip = frame.ipv4
        fields = {
            "eth_src": frame.eth_src,
            "eth_dst": frame.eth_dst,
            "eth_type": 0x0800,
            "ipv4_src": ip.src,
            "ipv4_dst": ip.dst,
            "ip_proto": ip.proto,
        }
        # As Open vSwitch sees a packet: the fragment type (1: a fragment, 2: not the first),
        # and for a later fragment no transport fields at all.
        fields["ip_frag"] = 3 if ip.later_fragment else (1 if _is_first_fragment(data) else 0)
        if ip.proto == 6 and not ip.later_fragment:
            fields.update(tcp_src=ip.src_port, tcp_dst=ip.dst_port, tcp_flags_nxm=ip.tcp_flags)
        elif ip.proto == 17 and not ip.later_fragment:
            fields.update(udp_src=ip.src_port, udp_dst=ip.dst_port)
        elif ip.proto == 1 and not ip.later_fragment:
            fields.update(icmpv4_type=ip.src_port, icmpv4_code=ip.dst_port)
        return self.fabric.trace(dpid, port, fields)


class FabricShell:
    """Stands in for the Ryu app under a Runtime: messages go straight to the fake fabric and
    every barrier counts as confirmed."""

    def __init__(self, fabric: FakeFabric):
        self.fabric = fabric

    def send(self, messages: list) -> None:
        self.fabric.apply(messages)

    def send_and_confirm(self, messages: list) -> dict:
        self.fabric.apply(messages)
        return {"confirmed": sorted(set(self.fabric.barriers)), "unconfirmed": []}
