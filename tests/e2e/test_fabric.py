"""The looped leaf-spine fabric: no broadcast storm, and link failures are routed around."""

import subprocess
import time


def _fabric_tx_packets(lab) -> int:
    """Packets sent out of every switch-to-switch port, summed over the fabric."""
    total = 0
    for switch in lab.topology.switches:
        host_ports = {h.port for h in lab.topology.hosts if h.switch == switch}
        ports = subprocess.run(
            ["ovs-vsctl", "list-ports", switch], capture_output=True, text=True, check=True
        ).stdout.split()
        for port in ports:
            if int(port.rsplit("eth", 1)[1]) in host_ports:
                continue
            count = subprocess.run(
                ["ovs-vsctl", "get", "interface", port, "statistics:tx_packets"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            total += int(count or 0)
    return total


def test_broadcasts_on_a_looped_fabric_do_not_storm(make_lab):
    lab = make_lab("leaf-spine")
    before = _fabric_tx_packets(lab)
    web1 = lab.host("web1")
    # 200 broadcast pings and ARP requests for absent addresses, from two hosts.
    web1.cmd("ping -b -c 200 -i 0.01 -W 1 10.0.0.255 >/dev/null 2>&1")
    lab.host("db1").cmd("for i in $(seq 1 50); do arping -c 1 -w 0.05 -I db1-eth0 10.0.0.200 >/dev/null 2>&1; done")
    time.sleep(2)
    after = _fabric_tx_packets(lab)
    # LLDP alone sends about one frame per fabric port a second; a storm would be millions.
    assert after - before < 400, f"fabric links carried {after - before} packets"
    assert lab.controller.running()
    assert lab.reaches("web1", "app1", "tcp", 8080)


def test_link_failure_is_survived_by_new_connections(make_lab):
    lab = make_lab("leaf-spine")
    assert lab.reaches("web1", "app1", "tcp", 8080)
    first = [e for e in lab.controller.events() if e["kind"] == "allow" and e["src"] == "web1"][-1]
    spine = {101: "spine1", 102: "spine2"}[first["switches"][1]]
    lab.net.configLinkStatus("leaf1", spine, "down")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if any(e["kind"] == "link-down" for e in lab.controller.events()):
            break
        time.sleep(0.2)
    assert lab.reaches("web1", "app1", "tcp", 8080)
    second = [e for e in lab.controller.events() if e["kind"] == "allow" and e["src"] == "web1"][-1]
    assert second["switches"][1] != first["switches"][1], (first, second)
    revoked = [e for e in lab.controller.events() if e["kind"] == "revoke" and e["reason"] == "link down"]
    assert revoked, "the connection over the failed link was not revoked"
