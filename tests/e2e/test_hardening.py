"""Attacks on the controller itself, in Mininet: a packet-in flood from an authenticated host,
forged and relayed LLDP. Each attack fails and the other hosts do not notice."""

import json
import os
import statistics
import subprocess
import sys
import time

from lab.net import TRAFFIC


def connect_times(lab, src: str, dst: str, port: int, count: int = 10, gap: float = 0.05) -> list[float]:
    out = lab.host(src).cmd(f"{sys.executable} {TRAFFIC} connect-times {lab.ip(dst)} {port} {count} --gap {gap}")
    times = json.loads(out.strip().splitlines()[-1])
    assert None not in times, f"{src} could not connect to {dst}:{port}: {[t for t in times if t is None]}"
    return times


def test_a_flooding_host_does_not_slow_other_hosts_flow_setups(make_lab):
    lab = make_lab("linear")
    assert lab.reaches("web2", "mon1", "udp", 514)
    before = statistics.median(connect_times(lab, "app1", "db1", 5432))
    # Thousands of new flows a second to random services of a host web2 may send syslog to: what
    # a scan looks like. (A busy client of an allowed service is no flood: test_attacks.py.)
    # Faster floods saturate the software switch itself on a 2-core machine, which is no test
    # of the controller.
    flooder = lab.host("web2").popen(
        [sys.executable, TRAFFIC, "flood", lab.ip("mon1"), "514", "12", "--rate", "4000", "--scan"]
    )
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
    meters = subprocess.run([*ofctl, "dump-meters", "s1"], capture_output=True, text=True, check=True).stdout
    assert "meter=2 pktps burst" in meters and "type=drop rate=2000 burst_size=2000" in meters, meters
    flows = subprocess.run([*ofctl, "dump-flows", "s1"], capture_output=True, text=True, check=True).stdout
    assert "priority=1100,ip,in_port=2 actions=meter:2,CONTROLLER" in flows, flows
    assert lab.controller.running()
    assert lab.reaches("web1", "app1", "tcp", 8080)


def test_forged_and_relayed_lldp_make_no_link(make_lab, tmp_path):
    lab = make_lab("linear")
    links_before = [e for e in lab.controller.events() if e["kind"] == "link-up"]
    # A genuine probe, captured where the controller sends one out of web1's port ...
    assert lab.reaches("web1", "app1", "tcp", 8080) and lab.reaches("web2", "mon1", "udp", 514)
    frame = tmp_path / "probe.bin"
    lab.host("web1").cmd(f"{sys.executable} {TRAFFIC} capture web1-eth0 0x88cc {frame}")
    assert frame.stat().st_size > 40
    # ... relayed at once into web2's port, as two colluding hosts would ...
    lab.host("web2").cmd(f"{sys.executable} {TRAFFIC} inject web2-eth0 {frame}")
    # ... and a forged one (right format, wrong key) from the rogue device.
    from segctl.core.discovery import LinkDiscovery

    forged = tmp_path / "forged.bin"
    forged.write_bytes(LinkDiscovery().probe(2, 1, time.time()))
    lab.host("rogue").cmd(f"{sys.executable} {TRAFFIC} inject rogue-eth0 {forged}")
    time.sleep(1.0)
    rejected = [e["reason"] for e in lab.controller.events() if e["kind"] == "lldp-rejected"]
    assert any("where host web2 is bound" in reason for reason in rejected), rejected
    assert any(reason.startswith("forged") for reason in rejected), rejected
    links_after = [e for e in lab.controller.events() if e["kind"] == "link-up"]
    assert len(links_after) == len(links_before) == 2
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "s1"], capture_output=True, text=True).stdout
    assert "priority=20000" in out  # the fabric still forwards what it did
    assert lab.reaches("web1", "app1", "tcp", 8080)


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_a_random_mac_flood_is_bounded_and_other_hosts_keep_connecting(make_lab):
    """rogue sends frames from random source MACs (and addresses) as fast as this machine lets
    it: the controller's memory and events file stay bounded, other hosts keep connecting."""
    lab = make_lab("linear")
    before = statistics.median(connect_times(lab, "app1", "db1", 5432))
    pid = lab.controller.process.pid
    rss_before = _rss_mib(pid)
    events_before = os.path.getsize(lab.controller.events_path)
    db1 = lab.topology.host("db1")
    flood = lab.host("rogue").popen(
        [sys.executable, TRAFFIC, "mac-flood", "rogue-eth0", "20", "--rate", "20000", "--dst-mac", db1.mac,
         "--dst-ip", db1.ip]
    )  # fmt: skip
    try:
        time.sleep(2.0)
        during = connect_times(lab, "app1", "db1", 5432, count=20)
        rss_peak = _rss_mib(pid)
    finally:
        out, _ = flood.communicate(timeout=60)
    sent = json.loads(out.decode().strip().splitlines()[-1])["sent"]
    assert sent > 50000, f"the flood was too weak to prove anything ({sent} frames)"
    rss_after = _rss_mib(pid)
    time.sleep(0.5)
    grown = os.path.getsize(lab.controller.events_path) - events_before
    print(f"mac flood: {sent} frames; setup {before * 1000:.1f} ms before, median "
          f"{statistics.median(during) * 1000:.1f} ms during; RSS {rss_before:.1f} -> {rss_peak:.1f} -> "
          f"{rss_after:.1f} MiB; events file +{grown} bytes")  # fmt: skip
    assert max(rss_peak, rss_after) - rss_before < 20, "the controller's memory grew with the flood"
    # Each 5 s the port is let back in, spends its burst of 100 denials and is dropped again:
    # about 100 records per 5 s, where each random MAC used to be one (7.7 MB a minute).
    denials = [e for e in lab.controller.events() if e["kind"] == "deny" and e.get("port") == 4]
    assert len(denials) <= 5 * 120, f"{len(denials)} denials recorded for 20 s of flood"
    assert grown < 250_000, f"the events file grew {grown} bytes under the flood"
    assert statistics.median(during) <= 2 * before + 0.010
    floods = [e for e in lab.controller.events() if e["kind"] == "flood"]
    assert floods and floods[0]["port"] == 4
    assert lab.reaches("web1", "app1", "tcp", 8080)


def test_each_new_connection_reaches_the_controller_once(make_lab):
    # The first segment of a connection is a packet-in; the segments after it must find the
    # entries it got. Open vSwitch caches a SYN's "to the controller" in its datapath, and a
    # cache entry that ignored the TCP flags sent the ACK and the first data to the controller
    # too (each answered with the connection's entries again) until the switch revalidated it:
    # about four packet-ins per connection instead of one, and its rate a half of what it is.
    lab = make_lab("linear")
    assert lab.reaches("web1", "app1", "tcp", 8080)
    count = 300

    def packet_ins() -> int:
        return json.loads(lab.controller.cli("health", "--json").stdout)["packet_ins"]

    before = packet_ins()
    times = connect_times(lab, "web1", "app1", 8080, count=count, gap=0)
    asked = packet_ins() - before
    assert len(times) == count
    # (a few more: link probes and ARP in the meantime)
    assert asked <= count * 1.1 + 10, f"{asked} packet-ins for {count} new connections"
    assert not [e for e in lab.controller.events() if e["kind"] == "flood"]
