"""A small fabric for driving the controller core in tests: two leaves, two spines, three hosts,
frame builders, and a trace of where a packet would go."""

import socket
import struct

from segctl import ofmsg
from segctl.core.controller import Controller
from segctl.core.flows import Barrier
from segctl.core.packets import ARP_REQUEST, BROADCAST_MAC, build_arp, mac_bytes, parse_frame
from segctl.core.pipeline import CONNECTION_BANDS, CONNECTION_MASK
from segctl.core.planner import plan_connection

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
SWITCHES = ((1, [1, 2, 3, 10, 11]), (2, [1, 2, 10, 11]), (101, [1, 2]), (102, [1, 2]))
ATTACHED = {WEB: (1, 1), DB: (2, 1), APP: (2, 2)}  # where each host is plugged in


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


def packet_fields(data: bytes) -> dict:
    """The match fields a switch sees in an IPv4 frame, as Open vSwitch sees them."""
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
    # The fragment type (1: a fragment, 2: not the first), and for a later fragment no
    # transport fields at all.
    fields["ip_frag"] = 3 if ip.later_fragment else (1 if _is_first_fragment(data) else 0)
    if ip.proto == 6 and not ip.later_fragment:
        fields.update(tcp_src=ip.src_port, tcp_dst=ip.dst_port, tcp_flags_nxm=ip.tcp_flags)
    elif ip.proto == 17 and not ip.later_fragment:
        fields.update(udp_src=ip.src_port, udp_dst=ip.dst_port)
    elif ip.proto == 1 and not ip.later_fragment:
        fields.update(icmpv4_type=ip.src_port, icmpv4_code=ip.dst_port)
    return fields


class Net:
    """Two leaves (1, 2) and two spines (101, 102); web at 1/1, db at 2/1, app at 2/2.

    The fabric runs on the net's clock (`now`); FlowRemoved messages the switches send go to
    the controller, and what it answers goes back to the fabric, as in the Ryu app."""

    def __init__(self, policy_text=POLICY, core=None):
        """`core`: a controller built elsewhere (from an LDAP directory, say) instead of the
        one from DIRECTORY and `policy_text`."""
        self.policy_text = policy_text
        self.fabric = FakeFabric(LINKS, clock=lambda: self.now)
        self.fabric.on_removed = self.flow_removed
        self.removals: list[tuple] = []  # (FlowRemoved, what the controller answered)
        self.decoded: dict[int, dict] = {}  # dpid -> its last audit's entries, by record bytes
        self.now = 100.0
        self.restart(core)

    def restart(self, core=None):
        """A controller (re)starts: a new one (or `core`), to which every switch connects,
        keeping the entries it has (fail-secure), and the links are found again."""
        self.core = core or Controller(directory(DIRECTORY), policy(self.policy_text))
        for dpid, ports in SWITCHES:
            self.fabric.apply(self.core.switch_up(dpid, ports, self.now))
        self.deliver_probes()  # the links are found the way the real controller finds them
        # Every link is found now: the edge ports may bind hosts at once (the real controller
        # waits EDGE_SETTLE for that; tests of the wait set settling_until themselves).
        self.core.ledger.settling_until = 0.0

    def flow_removed(self, removal) -> list:
        """A switch's FlowRemoved, handed to the controller as the Ryu app does."""
        answer = self.core.flow_removed(removal.dpid, removal.cookie, self.now, removal.reason)
        self.removals.append((removal, answer))
        return answer

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
        """A packet-in: time passes (what timed out meanwhile is reported first), then the
        controller's answer goes to the fabric. Returns the answer."""
        self.now += 0.01
        self.fabric.expire()
        return self.fabric.apply(self.core.packet_in(dpid, port, data, self.now))

    def advance(self, seconds, keep=()):
        """Let `seconds` pass in steps of at most a second; the packets in `keep` ((dpid,
        port, data), each sent through the fabric every step) keep their entries busy."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + 1.0)
            self.fabric.expire()
            for dpid, port, data in keep:
                self.trace(dpid, port, data)

    def audit(self, dpid: int, per_part: int = 50) -> list:
        """One flow-table audit of switch `dpid`, as the Ryu app runs it: the read, the switch's
        answer in parts (through segctl's own decoder), then the end of it. Returns what the
        controller sent back."""
        sent = self.fabric.apply(self.core.auditor.begin(dpid, self.now))
        seen: dict = {}
        for part in self.fabric.table(dpid).flow_stats(per_part):
            more, entries = ofmsg.decode_flow_stats(part, self.decoded.get(dpid), seen)
            sent += self.fabric.apply(self.core.audit_observe(dpid, entries, self.now))
        self.decoded[dpid] = seen  # as the app keeps them: an entry read before is not decoded again
        return sent + self.fabric.apply(self.core.audit_finish(dpid, self.now))

    def announce(self):
        """Every host says who it is (by ARP), as a booting host does."""
        self.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
        self.send(2, 1, arp_request(DB, "10.0.0.2", "10.0.0.2"))
        self.send(2, 2, arp_request(APP, "10.0.0.3", "10.0.0.3"))

    def trace(self, dpid, port, data):
        """Where an IPv4 frame sent in at (dpid, port) goes."""
        return self.fabric.trace(dpid, port, packet_fields(data))

    def follow(self, packet_out):
        """Where a packet the controller sent out (a PacketOut of an IPv4 frame) ends up."""
        return self.fabric.follow(packet_out.dpid, packet_out.port, packet_fields(packet_out.data), packet_out.in_port)

    def disagreements(self) -> list[str]:
        """Where the switches and the controller's connection table disagree: an entry of a
        live connection missing (or another in its place), or a connection entry of no live
        connection left behind."""
        problems = []
        installed = set(self.fabric.entries_of(*CONNECTION_BANDS))
        live = {c.cookie & CONNECTION_MASK for c in self.core.connections}
        for connection in self.core.connections:
            for entry in plan_connection(connection):
                if entry not in self.fabric.table(entry.dpid).entries:
                    problems.append(f"connection {connection.id} lacks {entry}")
        for entry in installed:
            if entry.cookie & CONNECTION_MASK not in live:
                problems.append(f"entry of no live connection: {entry}")
        return problems


class FabricShell:
    """Stands in for the Ryu app under a Runtime: messages go to the fake fabric; a switch
    confirms a batch's barrier unless it is stalled."""

    def __init__(self, fabric: FakeFabric):
        self.fabric = fabric

    def send(self, messages: list) -> None:
        self.fabric.apply(messages)

    def send_and_confirm(self, messages: list) -> dict:
        asked = sorted({m.dpid for m in messages if isinstance(m, Barrier)})
        self.fabric.apply(messages)
        confirmed = [dpid for dpid in asked if dpid not in self.fabric.stalled]
        return {"confirmed": confirmed, "unconfirmed": [dpid for dpid in asked if dpid not in confirmed]}
