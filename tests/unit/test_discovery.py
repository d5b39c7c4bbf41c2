"""Signed LLDP link discovery: links are found from the controller's own probes only; forged,
replayed, foreign and host-relayed probes make no link; silent links expire."""

import struct

from segctl.core.controller import DISCOVERY_SLICES
from segctl.core.discovery import LINK_TIMEOUT, LinkDiscovery
from segctl.core.flows import PacketOut

from ..fakenet import LINKS, WEB, Net, arp_request


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
