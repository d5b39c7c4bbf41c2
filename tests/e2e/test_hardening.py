"""Attacks on the controller itself, in Mininet: a packet-in flood from an authenticated host,
forged and relayed LLDP. Each attack fails and the other hosts do not notice."""

import json
import statistics
import subprocess
import sys
import time

from segctl.lab.net import PROBE


def connect_times(lab, src: str, dst: str, port: int, count: int = 10) -> list[float]:
    out = lab.host(src).cmd(f"{sys.executable} {PROBE} connect-times {lab.ip(dst)} {port} {count}")
    times = json.loads(out.strip().splitlines()[-1])
    assert None not in times, f"{src} could not connect to {dst}:{port}: {times}"
    return times


def test_a_flooding_host_does_not_slow_other_hosts_flow_setups(make_lab):
    lab = make_lab("linear")
    assert lab.reaches("web2", "mon1", "udp", 514)
    before = statistics.median(connect_times(lab, "app1", "db1", 5432))
    # Thousands of new connections a second, each one the policy allows (the costly kind: three
    # switches to program). Faster floods saturate the software switch itself on a 2-core
    # machine, which is no test of the controller.
    flooder = lab.host("web2").popen([sys.executable, PROBE, "flood", lab.ip("mon1"), "514", "12", "--rate", "4000"])
    try:
        time.sleep(1.0)
        during = statistics.median(connect_times(lab, "app1", "db1", 5432))
    finally:
        out, _ = flooder.communicate(timeout=30)
    sent = json.loads(out.decode().strip().splitlines()[-1])["sent"]
    assert sent > 30000, f"the flood was too weak to prove anything ({sent} flows)"
    assert during <= 2 * before + 0.005, (
        f"setup took {during * 1000:.1f} ms under the flood, {before * 1000:.1f} ms before"
    )
    floods = [e for e in lab.controller.events() if e["kind"] == "flood"]
    assert floods and floods[0]["hosts"] == ["web2"]
    # In the switch, web2's port (s1 port 2) reaches the controller only through its own meter.
    ofctl = ["ovs-ofctl", "-O", "OpenFlow13"]
    meters = subprocess.run([*ofctl, "dump-meters", "s1"], capture_output=True, text=True).stdout
    assert "meter=2 pktps burst" in meters and "type=drop rate=400 burst_size=1000" in meters, meters
    flows = subprocess.run([*ofctl, "dump-flows", "s1"], capture_output=True, text=True).stdout
    assert "priority=1100,ip,in_port=2 actions=meter:2,CONTROLLER" in flows, flows
    stats = subprocess.run([*ofctl, "meter-stats", "s1", "meter=2"], capture_output=True, text=True).stdout
    assert int(stats.split("packet_in_count:")[1].split()[0]) > 1000, stats  # the flood went through it
    assert lab.controller.running()
    assert lab.reaches("web1", "app1", "tcp", 8080)


def test_forged_and_relayed_lldp_make_no_link(make_lab, tmp_path):
    lab = make_lab("linear")
    links_before = [e for e in lab.controller.events() if e["kind"] == "link-up"]
    # A genuine probe, captured where the controller sends one out of web1's port ...
    assert lab.reaches("web1", "app1", "tcp", 8080) and lab.reaches("web2", "mon1", "udp", 514)
    frame = tmp_path / "probe.bin"
    lab.host("web1").cmd(f"{sys.executable} {PROBE} capture web1-eth0 0x88cc {frame}")
    assert frame.stat().st_size > 40
    # ... relayed at once into web2's port, as two colluding hosts would ...
    lab.host("web2").cmd(f"{sys.executable} {PROBE} inject web2-eth0 {frame}")
    # ... and a forged one (right format, wrong key) from the rogue device.
    from segctl.core.discovery import LinkDiscovery

    forged = tmp_path / "forged.bin"
    forged.write_bytes(LinkDiscovery().probe(2, 1, time.time()))
    lab.host("rogue").cmd(f"{sys.executable} {PROBE} inject rogue-eth0 {forged}")
    time.sleep(1.0)
    rejected = [e["reason"] for e in lab.controller.events() if e["kind"] == "lldp-rejected"]
    assert any("where host web2 is bound" in reason for reason in rejected), rejected
    assert any(reason.startswith("forged") for reason in rejected), rejected
    links_after = [e for e in lab.controller.events() if e["kind"] == "link-up"]
    assert len(links_after) == len(links_before) == 2
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "s1"], capture_output=True, text=True).stdout
    assert "priority=20000" in out  # the fabric still forwards what it did
    assert lab.reaches("web1", "app1", "tcp", 8080)
