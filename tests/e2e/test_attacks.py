"""Spoofing and mis-attached hosts get nothing through; the victims keep working."""

import os

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
    import subprocess

    found = []
    for name in lab.topology.switches:
        out = subprocess.run(
            ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", name], capture_output=True, text=True
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

    from segctl.core.packets import ARP_REPLY, BROADCAST_MAC, build_arp
    from segctl.lab.net import PROBE

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
        lab.host("web2").cmd(f"{sys.executable} {PROBE} inject web2-eth0 {path}")
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
