"""Attacks on the stateful pipeline (`pipeline: auto` on Open vSwitch): a compromised server
sending from its service's port, forged ICMP errors and fragments, and switches that lose
their controller. Every "denied" is counted at the destination."""

import socket
import struct
import subprocess
import time

from segctl.core.fabric import EDGE_SETTLE

from . import frames
from .test_stateful import stateful_policy, wait_described

UDP = 17


def _udp(src_mac, dst_mac, src_ip, dst_ip, sport, dport, payload=b"segctl-attack"):
    segment = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return frames.ipv4(src_mac, dst_mac, src_ip, dst_ip, UDP, segment)


def _quoting_icmp_error(src, dst, quoted_sport, quoted_dport, icmp_type=3, code=3):
    """An ICMP error from `src` to `dst` quoting a TCP segment dst -> src (dst's port
    `quoted_sport` to src's `quoted_dport`): what a server sends about its client's packet."""
    quoted = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0, 64, 6, 0, socket.inet_aton(dst.ip), socket.inet_aton(src.ip)
    ) + struct.pack("!HHI", quoted_sport, quoted_dport, 1)
    return frames.icmp(src.mac, dst.mac, src.ip, dst.ip, icmp_type, code, body=b"\0\0\0\0" + quoted)


def test_a_server_sends_nothing_from_its_port_to_ports_its_client_never_opened(make_lab, tmp_path):
    """app1 -> db1 tcp/5432 is a service, mon1 -> db1 a ping. db1 (compromised) sends from 5432,
    over UDP and TCP, to app1's ports, and timestamp replies mon1 never asked for: none arrives."""
    lab = make_lab("linear", policy=stateful_policy(tmp_path))
    wait_described(lab)
    app1, db1, mon1 = (lab.topology.host(n) for n in ("app1", "db1", "mon1"))
    assert lab.reaches("app1", "db1", "tcp", 5432) and lab.reaches("mon1", "db1", "icmp")
    udp_watch = lab.watch("app1", 2.5, src=db1.ip, proto=UDP)
    tcp_watch = lab.watch("app1", 2.5, src=db1.ip, proto=6, dport=8080)
    stamp_watch = lab.watch("mon1", 2.5, src=db1.ip, icmp_type=14)
    forged = [
        _udp(db1.mac, app1.mac, db1.ip, app1.ip, 5432, 8080),
        frames.tcp(db1.mac, app1.mac, db1.ip, app1.ip, 5432, 8080, 0x18),  # PSH+ACK
        frames.icmp(db1.mac, mon1.mac, db1.ip, mon1.ip, 14, body=b"\x12\x34\0\1"),
    ]
    for _ in range(3):
        lab.inject("db1", forged, str(tmp_path))
        time.sleep(0.3)
    assert udp_watch.count() == 0 and tcp_watch.count() == 0
    # (an echo reply would ride the live ping's reply entry: ICMP stays per connection, and an
    # OpenFlow match cannot see the echo identifier)
    assert stamp_watch.count() == 0


def test_a_large_ping_on_the_stateful_pipeline_neither_loops_nor_floods(make_lab, tmp_path):
    """mon1 pings db1 with 3 kB pings: each request's first fragment matches no whole-packet
    entry. Were ping a stateful service, sent back through the table it would come back to the
    controller, again and again: mon1's port taken for a flood. ICMP stays per connection on the
    stateful pipeline, and the large pings arrive."""
    lab = make_lab("linear", policy=stateful_policy(tmp_path))
    wait_described(lab)
    assert lab.reaches("mon1", "db1", "icmp")
    started = time.time()
    before = lab.ipv4_packet_ins()
    lab.host("mon1").cmd(f"ping -q -c 3 -i 0.3 -W 1 -s 3000 {lab.ip('db1')}")
    time.sleep(1.0)
    punted = lab.ipv4_packet_ins() - before
    floods = [e for e in lab.controller.events() if e["kind"] == "flood" and e["time"] >= started]
    assert not floods, f"three large pings got a port taken for a flood: {floods}"
    assert punted < 60, f"three large pings cost {punted} packet-ins"
    assert lab.reaches("mon1", "db1", "icmp")  # the small ping still works
    assert lab.reaches("mon1", "db1", "icmp", size=3000)  # and a large one


def test_one_packet_the_switch_cannot_match_does_not_loop_through_the_controller(make_lab, tmp_path):
    """app1 -> db1 tcp/5432 is a service. app1 sends one segment whose TCP header is cut short
    (8 bytes): segctl reads its ports, the switch does not (it needs 20 bytes), so the
    service's entries never take it. Sent back through the table, it must not come back to
    the controller again and again."""
    lab = make_lab("linear", policy=stateful_policy(tmp_path))
    wait_described(lab)
    app1, db1 = lab.topology.host("app1"), lab.topology.host("db1")
    assert lab.reaches("app1", "db1", "tcp", 5432)
    cut = frames.ipv4(app1.mac, db1.mac, app1.ip, db1.ip, 6, struct.pack("!HHI", 40000, 5432, 1))
    started = time.time()
    lab.inject("app1", [cut], str(tmp_path))
    time.sleep(1.0)
    before = lab.ipv4_packet_ins()
    time.sleep(2.0)
    looping = lab.ipv4_packet_ins() - before
    floods = [e for e in lab.controller.events() if e["kind"] == "flood" and e["time"] >= started]
    assert looping < 5 and not floods, f"one cut segment: {looping} packet-ins in 2 s, floods {floods}"
    assert lab.reaches("app1", "db1", "tcp", 5432)


def test_a_switch_that_loses_its_controller_does_not_lock_its_hosts_out(make_lab, tmp_path):
    """web1 (on s1) streams to app1 (on s2). s1 loses its controller for a few seconds and keeps
    forwarding on its entries (fail secure): web1's packets arrive at s2's port to s1, no longer
    a known link. Binding web1 there would hide the link and lock web1 out for good once s1 is
    back."""
    lab = make_lab("linear", policy=stateful_policy(tmp_path))
    wait_described(lab)
    log = tmp_path / "web1.log"
    stream = lab.stream("web1", "app1", 8080, str(log))
    try:
        time.sleep(1.5)
        target = f"tcp:127.0.0.1:{lab.of_port}"
        subprocess.run(["ovs-vsctl", "set-controller", "s1", "tcp:127.0.0.1:1"], check=True)
        time.sleep(EDGE_SETTLE + 2.0)
        subprocess.run(["ovs-vsctl", "set-controller", "s1", target], check=True)
        time.sleep(EDGE_SETTLE + 3.0)
    finally:
        stream.kill()
    bound = [e for e in lab.controller.events() if e["kind"] == "authenticate" and e.get("host") == "web1"]
    links = [e for e in lab.controller.events() if e["kind"] in ("link-up", "link-down")]
    assert links[-1]["links"] == 2, f"the s1-s2 link stayed hidden: {links[-3:]}, web1 bound at {bound[-1:]}"
    assert lab.reaches("web1", "app1", "tcp", 8080), f"web1 locked out: bound at {bound[-1:]}"


def test_a_switch_back_late_to_a_restarted_controller_does_not_lock_its_hosts_out(make_lab, tmp_path):
    """As above, but the controller restarts while s1 is away, so it never sees the s1-s2 link
    go: s2 and s3 come back at once, s1 seconds later (Open vSwitch retries up to 8 s apart).
    Meanwhile web1's segments to app1:8080, forwarded by s1 on its old service entry, arrive at
    s2's port to s1. The link ends the last run saved keep web1 from being bound there."""
    lab = make_lab("linear", policy=stateful_policy(tmp_path))
    wait_described(lab)
    web1, app1 = lab.topology.host("web1"), lab.topology.host("app1")
    assert lab.reaches("web1", "app1", "tcp", 8080)  # s1 holds the service's entry from now on
    target = f"tcp:127.0.0.1:{lab.of_port}"
    subprocess.run(["ovs-vsctl", "set-controller", "s1", "tcp:127.0.0.1:1"], check=True)
    lab.controller.stop()
    restarted = time.time()
    lab.controller.start()  # s2 and s3 reconnect; s1 stays away
    time.sleep(EDGE_SETTLE + 2.0)
    segments = [frames.tcp(web1.mac, app1.mac, web1.ip, app1.ip, 47000 + n, 8080, 0x02) for n in range(3)]
    for _ in range(3):
        lab.inject("web1", segments, str(tmp_path))  # through s1's old entry, to s2's port to s1
        time.sleep(0.3)
    subprocess.run(["ovs-vsctl", "set-controller", "s1", target], check=True)
    time.sleep(EDGE_SETTLE + 3.0)
    events = [e for e in lab.controller.events() if e["time"] >= restarted]
    bound = [e for e in events if e["kind"] == "authenticate" and e.get("host") == "web1"]
    links = [e for e in events if e["kind"] in ("link-up", "link-down")]
    assert links and links[-1]["links"] == 2, f"the s1-s2 link stayed hidden: {links[-3:]}, web1 bound at {bound}"
    assert all(e["dpid"] == 1 for e in bound), f"web1 bound away from its own switch: {bound}"
    assert lab.reaches("web1", "app1", "tcp", 8080), f"web1 locked out: bound at {bound}"


def test_a_server_cannot_send_icmp_errors_about_connections_its_client_never_opened(make_lab, tmp_path):
    """app1 -> db1 tcp/5432 is a service. db1 sends port-unreachable errors to app1 quoting a
    segment app1:40001 -> db1:5432 that app1 never sent: none arrives."""
    lab = make_lab("linear", policy=stateful_policy(tmp_path))
    wait_described(lab)
    app1, db1 = lab.topology.host("app1"), lab.topology.host("db1")
    assert lab.reaches("app1", "db1", "tcp", 5432)
    watch = lab.watch("app1", 2.5, src=db1.ip, icmp_type=3)
    for _ in range(3):
        lab.inject("db1", [_quoting_icmp_error(db1, app1, 40001, 5432)], str(tmp_path))
        time.sleep(0.3)
    assert watch.count() == 0, "db1's forged ICMP error about a connection app1 never opened reached app1"
