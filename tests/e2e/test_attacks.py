"""Spoofing and mis-attached hosts get nothing through; the victims keep working. Forged
segments, fragments and ICMP open nothing policy does not allow."""

import os
import subprocess
import sys
import time

from lab.net import TRAFFIC

from . import frames
from .test_hardening import connect_times

DIRECTORY_WITH_PINS = """
hosts:
  web1: {{mac: "02:00:00:00:01:01", ip: 10.0.0.11, labels: {{role: web}}, switch: 1, port: 1}}
  app1: {{mac: "02:00:00:00:02:01", ip: 10.0.0.21, labels: {{role: app}}, switch: 2, port: 1}}
  db1:  {{mac: "02:00:00:00:03:01", ip: 10.0.0.31, labels: {{role: db, env: prod}}}}
  # hr1 is pinned to switch 3 but the linear topology plugs it into switch 1.
  hr1:  {{mac: "02:00:00:00:04:01", ip: 10.0.0.41, labels: {{role: app}}, switch: 3}}
"""


def _flows_from(lab, mac):
    """Connection entries on every switch whose source MAC is `mac`."""

    found = []
    for name in lab.topology.switches:
        out = subprocess.run(
            ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", name], capture_output=True, text=True, check=True
        ).stdout
        found += [line for line in out.splitlines() if f"dl_src={mac}" in line and "priority=20000" in line]
    return found


def test_ip_spoofing_host_gets_nothing_through(make_lab):
    lab = make_lab("linear")
    assert lab.reaches("app1", "db1", "tcp", 5432)
    web2 = lab.host("web2")
    # web2 takes app1's address (app1 may reach the database; web2 may not).
    web2.cmd("ip addr flush dev web2-eth0 && ip addr add 10.0.0.21/24 dev web2-eth0")
    assert not lab.reaches("web2", "db1", "tcp", 5432)
    assert not lab.reaches("web2", "mon1", "udp", 514)  # even what web2 may do, from a lie
    assert lab.reaches("app1", "db1", "tcp", 5432)  # the victim is unaffected
    assert not _flows_from(lab, "02:00:00:00:01:02")
    denies = [
        e
        for e in lab.controller.events()
        if e["kind"] == "deny" and e.get("src_mac") == "02:00:00:00:01:02" and e.get("problem") == "ip"
    ]
    assert denies, "the spoofing attempt was not logged"


def test_mac_spoofing_host_gets_nothing_through(make_lab):
    lab = make_lab("linear")
    assert lab.reaches("app1", "db1", "tcp", 5432)  # app1 is bound at s2 port 1
    rogue = lab.host("rogue")
    rogue.cmd(
        "ip link set rogue-eth0 down && ip link set rogue-eth0 address 02:00:00:00:02:01"
        " && ip link set rogue-eth0 up && ip addr flush dev rogue-eth0"
        " && ip addr add 10.0.0.21/24 dev rogue-eth0 && ethtool -K rogue-eth0 tx off"
    )
    assert not lab.reaches("rogue", "db1", "tcp", 5432)
    assert lab.reaches("app1", "db1", "tcp", 5432)
    denies = [e for e in lab.controller.events() if e["kind"] == "deny" and e.get("problem") == "location"]
    assert denies, "the MAC spoofing attempt was not logged"


def test_pinned_host_elsewhere_and_unknown_host_get_nothing(make_lab, tmp_path):
    directory = tmp_path / "pins.yaml"
    directory.write_text(DIRECTORY_WITH_PINS.format())
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  - {name: to-db, from: {role: app}, to: {role: db}, proto: tcp, ports: [5432]}\n")
    lab = make_lab("linear", directory=str(directory), policy=str(policy))
    assert lab.reaches("app1", "db1", "tcp", 5432)
    assert not lab.reaches("hr1", "db1", "tcp", 5432)  # same role, wrong place
    assert not lab.reaches("web2", "db1", "tcp", 5432)  # not in this directory
    reasons = " ".join(e.get("reason", "") for e in lab.controller.events() if e["kind"] == "deny")
    assert "pinned to switch 3" in reasons and "not in the directory" in reasons
    assert os.path.exists(lab.controller.events_path)


def test_arp_poisoning_is_dropped_and_cannot_rebind_an_address(make_lab, tmp_path):
    import sys

    from lab.net import TRAFFIC
    from segctl.core.packets import ARP_REPLY, BROADCAST_MAC, build_arp

    lab = make_lab("linear")
    assert lab.reaches("web1", "app1", "tcp", 8080)
    web2, app1_ip = "02:00:00:00:01:02", lab.ip("app1")
    # web2 claims app1's address twice: a gratuitous ARP and a forged reply to web1.
    for name, frame in (
        ("gratuitous", build_arp(ARP_REPLY, web2, BROADCAST_MAC, web2, app1_ip, BROADCAST_MAC, app1_ip)),
        ("reply", build_arp(ARP_REPLY, web2, "02:00:00:00:01:01", web2, app1_ip, "02:00:00:00:01:01", lab.ip("web1"))),
    ):
        path = tmp_path / f"{name}.bin"
        path.write_bytes(frame)
        lab.host("web2").cmd(f"{sys.executable} {TRAFFIC} inject web2-eth0 {path}")
    lab.host("web1").cmd(f"ip neigh flush dev web1-eth0 && ping -c1 -W1 {app1_ip} >/dev/null")
    neighbours = lab.host("web1").cmd(f"ip neigh show {app1_ip}")
    assert "02:00:00:00:02:01" in neighbours and web2 not in neighbours, neighbours
    assert lab.reaches("web1", "app1", "tcp", 8080)  # the victim's traffic goes to the victim
    lies = [
        e
        for e in lab.controller.events()
        if e["kind"] == "deny" and e.get("src_mac") == web2 and e.get("problem") == "ip"
    ]
    assert lies, "the poisoning attempt was not logged"


# -- the attack run's findings (issue 15) ----------------------------------------------------
ACK, FIN_ACK, RST, SYN_ACK, SYN = 0x10, 0x11, 0x04, 0x12, 0x02


def _forge_then_open(lab, folder, server, client, service, port, flags) -> int:
    """`server` forges one segment from its service port to the client's `port`, then tries to
    open a connection from the service port to that port. Returns the SYNs that reached the client."""
    s, c = lab.topology.host(server), lab.topology.host(client)
    forged = frames.tcp(s.mac, c.mac, s.ip, c.ip, service, port, flags)
    syn = frames.tcp(s.mac, c.mac, s.ip, c.ip, service, port, SYN)
    watch = lab.watch(client, 2.5, src=s.ip, proto=6, dport=port, syn=True)
    lab.inject(server, [forged], folder)
    time.sleep(0.3)
    lab.inject(server, [syn], folder)
    time.sleep(0.5)
    lab.inject(server, [syn], folder)
    return watch.count()


def test_a_forged_reply_never_lets_a_server_open_a_connection_to_its_client(make_lab, tmp_path):
    """Policy allows app1 -> db1 tcp/5432 only. db1 forges an ACK, FIN+ACK, RST or SYN+ACK from
    5432 to app1, then sends SYNs from 5432 to the same port of app1 (each one a port app1
    serves): none reaches app1, with the controller running and after it restarted."""
    lab = make_lab("linear")
    app1 = lab.topology.host("app1")
    # The watcher sees SYNs that are allowed: it can tell a leak.
    watch = lab.watch("db1", 3, src=app1.ip, proto=6, dport=5432, syn=True)
    assert lab.reaches("app1", "db1", "tcp", 5432)
    assert watch.count() >= 1
    for phase in ("running", "restarted"):
        if phase == "restarted":
            lab.restart_controller()
            assert lab.reaches("app1", "db1", "tcp", 5432)  # both ends located again
        for flags, port in ((ACK, 22), (FIN_ACK, 80), (RST, 443), (SYN_ACK, 8080)):
            leaked = _forge_then_open(lab, str(tmp_path), "db1", "app1", 5432, port, flags)
            assert leaked == 0, f"{phase}: after a forged {flags:#x}, db1's SYN reached app1:{port}"
    assert not lab.reaches("db1", "app1", "tcp", 22)
    assert lab.reaches("app1", "db1", "tcp", 5432)
    drops = subprocess.run(
        ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "s3"], capture_output=True, text=True, check=True
    ).stdout
    server_drops = [line for line in drops.splitlines() if "priority=20100" in line]  # at db1's switch
    assert server_drops and all("-rst" in line and "-ack" in line for line in server_drops), drops


def test_fragmented_datagrams_of_allowed_connections_arrive_and_lone_fragments_do_not(make_lab, tmp_path):
    lab = make_lab("linear")
    # 3 kB: the datagram, its echo, the ping and its reply each cross as three fragments.
    assert lab.reaches("web2", "mon1", "udp", 514, size=3000), "a 3 kB datagram of an allowed flow was lost"
    assert lab.reaches("mon1", "db1", "icmp", size=3000), "a 3 kB ping of an allowed flow was lost"
    assert not lab.reaches("web2", "mon1", "udp", 53, size=3000)  # still only what policy allows
    # Lone later fragments: of a pair with no connection, and of an allowed pair's other protocol.
    hr1, db1, web2, mon1 = (lab.topology.host(n) for n in ("hr1", "db1", "web2", "mon1"))
    watch_db1 = lab.watch("db1", 2.5, src=hr1.ip, later_fragment=True)
    watch_mon1 = lab.watch("mon1", 2.5, src=web2.ip, proto=6, later_fragment=True)
    for _ in range(3):
        lab.inject("hr1", [frames.later_fragment(hr1.mac, db1.mac, hr1.ip, db1.ip, 17)], str(tmp_path))
        lab.inject("web2", [frames.later_fragment(web2.mac, mon1.mac, web2.ip, mon1.ip, 6)], str(tmp_path))
        time.sleep(0.2)
    assert watch_db1.count() == 0 and watch_mon1.count() == 0


def test_icmp_rules_allow_echo_and_never_redirects_timestamps_or_unsolicited_replies(make_lab, tmp_path):
    """monitoring-ping lets mon1 send icmp to any host; it names no types, so echo only."""
    lab = make_lab("linear")
    mon1, db1 = lab.topology.host("mon1"), lab.topology.host("db1")
    watch = lab.watch("db1", 3, src=mon1.ip, icmp_type=8)
    assert lab.reaches("mon1", "db1", "icmp")
    assert watch.count() >= 1  # the watcher sees what is allowed
    for icmp_type in (5, 9, 13, 0):  # redirect, router advertisement, timestamp, echo reply
        watch = lab.watch("db1", 2, src=mon1.ip, icmp_type=icmp_type)
        message = frames.icmp(mon1.mac, db1.mac, mon1.ip, db1.ip, icmp_type)
        for _ in range(3):
            lab.inject("mon1", [message], str(tmp_path))
            time.sleep(0.3)
        assert watch.count() == 0, f"ICMP type {icmp_type} from mon1 reached db1"


def test_a_busy_client_is_not_a_flood_and_a_scan_still_is(make_lab):
    """app1 opens short connections to db1:5432 (allowed) one after another, as fast as it can:
    none fails and no flood is declared. web2 scanning mon1's ports is cut off."""
    lab = make_lab("linear")
    assert lab.reaches("app1", "db1", "tcp", 5432)
    started = time.monotonic()
    times = connect_times(lab, "app1", "db1", 5432, count=1500, gap=0)
    rate = len(times) / (time.monotonic() - started)
    assert None not in times
    floods = [e for e in lab.controller.events() if e["kind"] == "flood"]
    assert not floods, f"a client at {rate:.0f} connections/s was taken for a flood: {floods}"
    scanner = lab.host("web2").popen([sys.executable, TRAFFIC, "flood", lab.ip("mon1"), "514", "3", "--scan"])
    scanner.communicate(timeout=30)
    floods = [e for e in lab.controller.events() if e["kind"] == "flood"]
    assert floods and floods[0]["hosts"] == ["web2"] and "denials" in floods[0]["reason"], floods
    assert lab.reaches("app1", "db1", "tcp", 5432)


def test_fragmented_icmp_of_any_type_does_not_ride_a_pings_reply_entry(make_lab, tmp_path):
    """mon1 pings db1 (allowed): the reply entry carries echo replies, type 0 code 0. In
    OpenFlow's "normal" fragment mode every fragment's type and code read 0, so db1's fragmented
    echo and timestamp requests would pass it. Neither reaches mon1."""
    lab = make_lab("linear")
    mon1, db1 = lab.topology.host("mon1"), lab.topology.host("db1")
    ping = lab.host("mon1").popen(["ping", "-q", "-i", "0.2", "-c", "40", db1.ip])  # keeps the reply entry live
    try:
        time.sleep(1.0)
        for icmp_type in (8, 13):
            pieces = frames.fragments(
                db1.mac, mon1.mac, db1.ip, mon1.ip, 1, frames.icmp_payload(icmp_type), ident=900 + icmp_type
            )
            watch = lab.watch("mon1", 2.5, src=db1.ip, icmp_type=icmp_type)
            for _ in range(3):
                lab.inject("db1", pieces, str(tmp_path))
                time.sleep(0.3)
            assert watch.count() == 0, f"db1's fragmented ICMP type {icmp_type} reached mon1 along its ping"
    finally:
        ping.kill()
    assert lab.reaches("mon1", "db1", "icmp", size=3000)  # a real large ping still works


def test_a_client_cannot_make_its_server_look_like_a_flood(make_lab, tmp_path):
    """web1 opens web1:40000 -> app1:8080 (allowed) with one SYN, then streams ACKs on it at
    thousands a second: app1 answers each with a RST. Those RSTs are app1's segments of an
    allowed connection: the switch carries them, and app1's port is not taken for a flood."""
    lab = make_lab("linear")
    web1, app1 = lab.topology.host("web1"), lab.topology.host("app1")
    assert lab.reaches("web1", "app1", "tcp", 8080) and lab.reaches("app1", "db1", "tcp", 5432)
    lab.inject("web1", [frames.tcp(web1.mac, app1.mac, web1.ip, app1.ip, 40000, 8080, SYN)], str(tmp_path))
    time.sleep(0.5)
    started = time.time()
    acks = [frames.tcp(web1.mac, app1.mac, web1.ip, app1.ip, 40000, 8080, ACK, seq=n * 7919) for n in range(50)]
    paths = frames.save(acks, tmp_path)
    blast = lab.host("web1").popen(
        [sys.executable, TRAFFIC, "inject", "web1-eth0", *paths, "--count", "300", "--rate", "5000"]
    )
    during = connect_times(lab, "app1", "db1", 5432, count=10, gap=0.2)
    blast.communicate(timeout=60)
    floods = [e for e in lab.controller.events() if e["kind"] == "flood" and e["time"] >= started]
    assert not floods, f"a client's ACKs got a port taken for a flood: {floods}"
    assert None not in during
    assert lab.reaches("app1", "db1", "tcp", 5432)
