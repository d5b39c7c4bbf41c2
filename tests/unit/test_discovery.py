"""Signed LLDP link discovery: links are found from the controller's own probes only; forged,
replayed, foreign and host-relayed probes make no link; silent links expire."""

import struct

from segctl.core.controller import DISCOVERY_SLICES, Controller
from segctl.core.discovery import LINK_TIMEOUT, LinkDiscovery
from segctl.core.fabric import EDGE_SETTLE
from segctl.core.flows import PacketOut

from ..fakenet import DIRECTORY, LINKS, POLICY, SWITCHES, WEB, Net, arp_request
from .helpers import directory, policy


def links(net):
    return sorted(net.core.topology.links())


def rejected(net):
    return [e["reason"] for e in net.core.events.latest(1000) if e["kind"] == "lldp-rejected"]


def test_probes_find_every_link_of_the_fabric():
    net = Net()
    assert links(net) == sorted(LINKS)
    assert rejected(net) == []


def test_probe_round_trip_and_tampering():
    discovery = LinkDiscovery(key=b"k" * 32)
    probe = discovery.probe(0x1234, 7, now=50.0)
    assert discovery.verify(probe, 50.5) == (0x1234, 7)
    assert discovery.verify(probe, 54.0).startswith("replayed")
    assert LinkDiscovery(key=b"x" * 32).verify(probe, 50.5).startswith("forged")  # another run's key
    # Claim another port with the same signature: the HMAC covers switch and port.
    forged = probe.replace(struct.pack("!I", 7), struct.pack("!I", 8), 1)
    assert discovery.verify(forged, 50.5).startswith("forged")
    assert discovery.verify(probe[:40], 50.5).startswith("not a segctl probe")


def test_forged_replayed_and_foreign_lldp_make_no_link():
    net = Net()
    before = links(net)
    attacker = LinkDiscovery()  # does not know the controller's key
    net.send(1, 3, attacker.probe(2, 1, net.now))
    old = net.core.discovery.probe(2, 1, net.now - 10)  # a real probe, captured long ago
    net.send(1, 3, old)
    unsigned = bytes.fromhex("0180c200000e020000000099" + "88cc") + bytes.fromhex("020704" + "00" * 7) + b"\0\0"
    net.send(1, 3, unsigned)
    assert links(net) == before
    reasons = rejected(net)
    assert reasons[0].startswith("forged") and reasons[1].startswith("replayed") and len(reasons) == 3


def test_a_host_relaying_fresh_probes_creates_no_link():
    net = Net()
    net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))  # web is bound at 1/1
    relayed = net.core.discovery.probe(2, 1, net.now)  # a genuine probe from 2/1 ...
    net.send(1, 1, relayed)  # ... replayed by web into 1/1
    assert (1, 1) not in net.core.topology.link_ports
    assert "where host web is bound" in rejected(net)[-1]
    assert WEB in net.core.bindings.by_mac  # the victim keeps its binding


def discovery_round(net) -> None:
    """One probe interval: every slice of ports probed, probes carried across the links."""
    for _ in range(DISCOVERY_SLICES):
        net.fabric.apply(net.core.discover(net.now))
    net.deliver_probes()


def test_every_port_is_probed_once_per_interval():
    net = Net()
    net.fabric.packet_outs.clear()
    for _ in range(DISCOVERY_SLICES):
        net.fabric.apply(net.core.discover(net.now))
    probed = sorted((p.dpid, p.port) for p in net.fabric.packet_outs)
    assert probed == sorted((d, p) for d, ports in net.core.topology.ports.items() for p in ports)


def test_a_link_no_probe_crosses_expires_and_a_port_down_drops_it_at_once():
    net = Net()
    net.now += LINK_TIMEOUT / 2
    del net.fabric.links[(1, 10)], net.fabric.links[(101, 1)]  # the 1/10-101/1 link goes silent
    discovery_round(net)
    net.now += LINK_TIMEOUT / 2 + 0.1
    discovery_round(net)
    assert (1, 10, 101, 1) not in links(net) and (1, 11, 102, 1) in links(net)
    net.fabric.apply(net.core.port_changed(1, 11, False, net.now))
    assert (1, 11, 102, 1) not in links(net)
    sent = net.core.port_changed(1, 11, True, net.now)
    assert isinstance(sent[-1], PacketOut) and sent[-1].data[12:14] == b"\x88\xcc"  # probed at once


def test_after_a_restart_no_host_is_bound_at_a_link_end_of_the_last_run_until_its_switch_is_back():
    """The controller restarts; leaf 1 comes back late (Open vSwitch retries up to 8 s apart)
    and meanwhile forwards web's packets to spine 101 on its old entries. Bound at 101/1, web
    would be locked out of its own port and the link refused for good (a probe crossing a host's
    port looks relayed). The link ends the last run knew keep any host from being bound there."""
    net = Net()
    ends = net.core.ledger.link_ends()
    assert ends == sorted([[a, a_port] for a, a_port, _, _ in LINKS] + [[b, b_port] for _, _, b, b_port in LINKS])
    core = Controller(directory(DIRECTORY), policy(POLICY))
    core.remember_link_ends(ends)
    net.core = core
    for dpid, ports in SWITCHES:
        if dpid != 1:  # leaf 1 is late
            net.fabric.apply(core.switch_up(dpid, ports, net.now))
    late = net.fabric.links.pop((101, 1)), net.fabric.links.pop((102, 1))  # (their probes reach no controller)
    net.deliver_probes()
    assert (1, 10, 101, 1) not in links(net) and (2, 10, 101, 2) in links(net)
    net.now += EDGE_SETTLE + 1.0  # the others have settled
    core.packet_in(101, 1, arp_request(WEB, "10.0.0.1", "10.0.0.2"), net.now)
    assert WEB not in core.bindings.by_mac  # not bound at a link end of the last run
    net.fabric.apply(core.switch_up(1, dict(SWITCHES)[1], net.now))  # leaf 1 is back
    net.fabric.links[(101, 1)], net.fabric.links[(102, 1)] = late
    net.fabric.apply(core.discover(net.now + 1.0))  # (each port probed again within a second)
    for tick in range(DISCOVERY_SLICES):
        net.fabric.apply(core.discover(net.now + tick / DISCOVERY_SLICES))
    net.deliver_probes()
    assert (1, 10, 101, 1) in links(net)
    net.now += EDGE_SETTLE + 1.0
    net.fabric.apply(core.packet_in(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.2"), net.now))
    assert core.bindings.by_mac[WEB].dpid == 1 and core.bindings.by_mac[WEB].port == 1


def test_a_link_end_of_the_last_run_keeps_hosts_out_until_its_port_goes_down():
    """A link end the last run knew is a former link end, as one whose link went down while the
    controller ran: however long its neighbour stays away (the engineer restarts the controller
    because that switch does not connect, say), no host is bound there until the link is seen
    again or the port goes down, here because a host was plugged in instead."""
    net = Net()
    core = Controller(directory(DIRECTORY), policy(POLICY))
    core.remember_link_ends([[1, 1]])  # web's port was a link's end in the last run
    net.core = core
    for dpid, ports in SWITCHES:
        net.fabric.apply(core.switch_up(dpid, ports, net.now))
    net.deliver_probes()
    for _ in range(3):
        net.now += 300.0
        net.fabric.apply(core.discover(net.now))
        for _ in range(5):  # (said once a port per LINK_END_NOTICE)
            core.packet_in(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.2"), net.now)
        assert WEB not in core.bindings.by_mac
    assert [1, 1] in core.ledger.link_ends()  # (and the next start still knows it)
    held = [e for e in core.events.latest(1000) if e["kind"] == "held-at-link-end"]
    assert [(e["host"], e["dpid"], e["port"]) for e in held] == [("web", 1, 1)] * 3, held
    net.fabric.apply(core.port_changed(1, 1, False, net.now))  # unplugged, a host plugged in
    net.fabric.apply(core.port_changed(1, 1, True, net.now))
    net.now += 1.0
    core.packet_in(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.2"), net.now)
    assert core.bindings.by_mac[WEB].port == 1 and [1, 1] not in core.ledger.link_ends()


def test_a_link_end_of_the_last_run_that_is_down_when_its_switch_connects_is_forgotten():
    net = Net()
    core = Controller(directory(DIRECTORY), policy(POLICY))
    core.remember_link_ends([[1, 1]])
    net.core = core
    for dpid, ports in SWITCHES:
        net.fabric.apply(core.switch_up(dpid, [p for p in ports if (dpid, p) != (1, 1)], net.now))
    net.deliver_probes()
    assert [1, 1] not in core.ledger.link_ends()
    net.fabric.apply(core.port_changed(1, 1, True, net.now + 1.0))  # a host plugged in later
    net.now += EDGE_SETTLE + 1.0
    core.packet_in(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.2"), net.now)
    assert core.bindings.by_mac[WEB].port == 1


def test_a_clock_set_back_after_a_switch_connects_does_not_keep_every_host_out_for_as_long():
    """The controller starts at boot; a second later the clock is set back an hour (NTP
    correcting a wrong hardware clock). The 2.5 s after a switch connects (no host bound at a
    port not known as a link) must not last an hour: settling_until is a wall-clock time, and
    the discovery loop notices the step back."""
    net = Net()
    core = Controller(directory(DIRECTORY), policy(POLICY))
    start = net.now = 1_764_000_000.0  # (a wall-clock time)
    net.core = core
    for dpid, ports in SWITCHES:
        net.fabric.apply(core.switch_up(dpid, ports, start))
    net.deliver_probes()
    net.fabric.apply(core.discover(start + 1.0))
    elapsed = 1.0
    while elapsed < EDGE_SETTLE + 2.0:  # the discovery loop goes on, ten times a second
        elapsed += 1.0 / DISCOVERY_SLICES
        net.fabric.apply(core.discover(start + elapsed - 3600.0))  # the clock set back an hour
    core.packet_in(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.2"), start + elapsed - 3600.0)
    assert core.bindings.by_mac.get(WEB) is not None and core.bindings.by_mac[WEB].port == 1
