"""A flooding port is throttled at the switch without hurting anyone else; a scanning host is
quarantined by the scan detector; the settings are validated like the rest of the policy."""

import pytest

from segctl.core.errors import ConfigError
from segctl.core.flows import FlowAdd, PacketOut
from segctl.core.pipeline import PRIORITY_FLOOD, Kind, parse_cookie
from segctl.core.protection import PortRateLimiter

from ..fakenet import APP, DB, POLICY, WEB, Net, arp_request, icmp_echo, tcp
from .helpers import policy, problems


def test_token_bucket_allows_a_burst_then_the_rate():
    limiter = PortRateLimiter(rate=10, burst=5)
    assert [limiter.allow((1, 1), 0.0) for _ in range(6)] == [True] * 5 + [False]
    assert limiter.allow((1, 2), 0.0)  # another port has its own bucket
    assert limiter.allow((1, 1), 0.1) and not limiter.allow((1, 1), 0.1)  # 10/s refills one per 0.1 s


def test_a_flooding_port_is_throttled_and_nobody_else_notices():
    net = Net(POLICY + "protection: {packet_in_rate: 10, packet_in_burst: 20, flood_hold: 5}\n")
    net.announce()
    established = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 30000, 5432)
    net.send(1, 1, established)
    throttled = []
    for port in range(40000, 40040):  # a burst of new connections from web
        throttled += [
            m
            for m in net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", port, 5432))
            if isinstance(m, FlowAdd) and m.priority == PRIORITY_FLOOD
        ]
    assert len(throttled) == 1  # one drop entry, not one per packet
    (drop,) = throttled
    assert (drop.dpid, drop.match, drop.actions, drop.hard_timeout) == (1, (("in_port", 1),), (), 5)
    net.fabric.apply([drop])
    flood = [e for e in net.core.events.latest(500) if e["kind"] == "flood"]
    assert len(flood) == 1 and flood[0]["hosts"] == ["web"]
    assert net.trace(1, 1, established)[0] == "out"  # its open connection still flows
    assert net.trace(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 50000, 5432))[0] == "drop"  # nothing new
    bystander = icmp_echo(APP, DB, "10.0.0.3", "10.0.0.2")
    net.send(2, 2, bystander)  # app, on another port, is served at once
    assert net.trace(2, 2, bystander) == ("out", 2, 1)


def test_a_scanning_host_is_quarantined_by_the_scan_detector():
    net = Net(POLICY + "protection: {scan_quarantine: {denied: 5, seconds: 10}}\n")
    net.announce()
    for port in range(20, 24):
        net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, port))
    assert "web" not in net.core.quarantined
    net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 24))
    entry = net.core.quarantined["web"]
    assert entry.by == "scan-detector" and "5 denied connections within 10 s" in entry.reason
    assert net.fabric.saves == 1  # the quarantine is saved like one an engineer asked for
    assert net.trace(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40001, 5432))[0] == "drop"


def test_slow_denials_do_not_trip_the_scan_detector():
    net = Net(POLICY + "protection: {scan_quarantine: {denied: 3, seconds: 1}}\n")
    net.announce()
    for port in range(20, 30):
        net.now += 2
        net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, port))
    assert not net.core.quarantined


def test_protection_settings_are_validated():
    with pytest.raises(ConfigError) as exc:
        policy(
            """
            rules: []
            protection:
              packet_in_rate: 0
              flood_hold: 1.5
              scan_quarantine: {denied: 0}
              burst: 3
            """
        )
    assert problems(exc) == [
        "policy.yaml:7: protection: unknown key 'burst' "
        "(allowed: denied_burst, denied_rate, flood_hold, meters, packet_in_burst, packet_in_rate, scan_quarantine)",
        "policy.yaml:4: protection: packet_in_rate must be 1-1000000 packet-ins per second per port",
        "policy.yaml:5: protection: flood_hold must be 1-3600 seconds",
        "policy.yaml:6: protection: scan_quarantine needs denied: a count of 1 or more",
    ]


def flood_events(net):
    return [e for e in net.core.events.latest(5000) if e["kind"] == "flood"]


def test_a_busy_client_of_an_allowed_service_is_not_a_flood():
    """500 new connections a second to a service web may use, for 4 s (the attack run's client
    managed 466/s with protection out of the way): none is dropped, no flood is declared."""
    net = Net()
    net.announce()
    for n in range(2000):
        net.now += 0.002
        syn = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 10000 + n, 5432)
        sent = net.core.packet_in(1, 1, syn, net.now)
        assert PacketOut(1, sent[-1].port, syn, 1) in sent, n
    assert not flood_events(net)


def test_a_scan_from_the_same_port_budget_is_contained_after_its_denial_burst():
    net = Net(POLICY + "protection: {denied_rate: 20, denied_burst: 100}\n")
    net.announce()
    drops = []
    for n in range(300):  # random services of db, none allowed, 1,000 a second
        net.now += 0.001
        sent = net.core.packet_in(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 30000, 1000 + n), net.now)
        drops += [m for m in sent if isinstance(m, FlowAdd) and m.priority == PRIORITY_FLOOD]
    assert len(drops) == 1 and drops[0].match == (("in_port", 1),)
    (flood,) = flood_events(net)
    assert flood["hosts"] == ["web"] and "denials/s" in flood["reason"]
    assert drops[0].hard_timeout == 5


def test_a_mac_flood_is_contained_and_its_tables_stay_bounded():
    from segctl.core.ledger import STRANGERS_LIMIT

    net = Net()
    net.announce()
    drops = []
    for n in range(5000):
        net.now += 0.0001
        mac = "02:ff:" + n.to_bytes(4, "big").hex(":")
        sent = net.core.packet_in(1, 2, tcp(mac, DB, "10.0.0.9", "10.0.0.2", 1, 5432), net.now)
        drops += [m for m in sent if isinstance(m, FlowAdd) and m.priority == PRIORITY_FLOOD]
    assert len(drops) == 1 and drops[0].match == (("in_port", 2),)
    assert len(net.core.strangers) <= STRANGERS_LIMIT
    ports = sum(len(p) for p in net.core.topology.ports.values())
    assert len(net.core.ledger.denials._buckets) <= ports and len(net.core.ledger.limiter._buckets) <= ports
    syn = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432)  # a host on another port is served
    sent = net.core.packet_in(1, 1, syn, net.now)
    assert PacketOut(1, sent[-1].port, syn, 1) in sent


def test_the_denial_that_trips_the_scan_detector_still_gets_its_exact_drop():
    net = Net(POLICY + "protection: {scan_quarantine: {denied: 2, seconds: 10}}\n")
    net.announce()
    net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 20))
    sent = net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 21))
    assert "web" in net.core.quarantined
    (deny,) = [m for m in sent if isinstance(m, FlowAdd) and parse_cookie(m.cookie)[0] == Kind.DENY]
    assert (deny.dpid, deny.match_dict()["tcp_dst"]) == (1, 21)
    assert any(isinstance(m, FlowAdd) and parse_cookie(m.cookie)[0] == Kind.QUARANTINE for m in sent)


def test_a_genuine_host_s_lying_arps_count_against_its_port_s_denial_budget():
    net = Net(POLICY + "protection: {denied_rate: 0.1, denied_burst: 2}\n")
    net.announce()
    lie = arp_request(WEB, "10.0.0.9", "10.0.0.2")  # web's MAC, an address that is not web's
    assert net.send(1, 1, lie) == [] and net.send(1, 1, lie) == []
    (drop,) = net.send(1, 1, lie)
    assert parse_cookie(drop.cookie)[0] == Kind.FLOOD and drop.match_dict() == {"in_port": 1}


def test_a_clock_set_back_does_not_cut_a_port_off_for_as_long():
    """The clock is set back an hour (NTP): a port's bucket must not count the hour as a debt
    of 3.6 million packet-ins (on the code before, the port's next packet-ins are refused, and
    the port cut off as flooding, for an hour)."""
    limiter = PortRateLimiter(1000.0, 2000)
    now = 1_764_000_000.0
    assert limiter.allow((1, 1), now)
    assert limiter.allow((1, 1), now - 3600.0)
    assert limiter.allow((1, 1), now - 3600.0 + 0.01)
