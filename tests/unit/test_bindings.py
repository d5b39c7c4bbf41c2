from segctl.core.bindings import Bindings

from .helpers import directory

DIRECTORY = directory("""
    hosts:
      web1: {mac: "02:00:00:00:00:01", ip: 10.0.0.1, switch: 1, port: 1}
      free: {mac: "02:00:00:00:00:02"}
      db1:  {mac: "02:00:00:00:00:03", ip: 10.0.0.3}
""")


def make(live=lambda dpid, port: True):
    return Bindings(live)


def test_known_host_at_its_pin_with_its_ip_is_bound_once():
    b = make()
    first = b.admit(DIRECTORY, "02:00:00:00:00:01", 1, 1, "10.0.0.1", 0)
    assert first.ok and first.new and b.location("02:00:00:00:00:01") == (1, 1)
    again = b.admit(DIRECTORY, "02:00:00:00:00:01", 1, 1, None, 1)
    assert again.ok and not again.new


def test_refusals_name_the_problem():
    b = make()
    assert b.admit(DIRECTORY, "02:00:00:00:00:99", 1, 5, None, 0).problem == "unknown"
    assert b.admit(DIRECTORY, "02:00:00:00:00:01", 1, 2, None, 0).problem == "pin"
    assert b.admit(DIRECTORY, "02:00:00:00:00:01", 1, 1, "10.0.0.9", 0).problem == "ip"
    # a host without a fixed IP may not take another host's directory IP
    assert b.admit(DIRECTORY, "02:00:00:00:00:02", 2, 1, "10.0.0.3", 0).problem == "ip"
    assert b.location("02:00:00:00:00:02") is None


def test_learned_ip_sticks_and_cannot_be_taken():
    b = make()
    assert b.admit(DIRECTORY, "02:00:00:00:00:02", 2, 1, "10.0.0.50", 0).ok
    assert b.ip_owner(DIRECTORY, "10.0.0.50").name == "free"
    assert b.admit(DIRECTORY, "02:00:00:00:00:02", 2, 1, "10.0.0.51", 1).problem == "ip"
    assert b.admit(DIRECTORY, "02:00:00:00:00:03", 3, 1, "10.0.0.50", 1).problem == "ip"
    assert b.admit(DIRECTORY, "02:00:00:00:00:02", 2, 1, "0.0.0.0", 2).ok  # ARP probes


def test_a_bound_mac_moves_only_when_its_old_port_is_down():
    live = {(2, 1)}
    b = make(lambda dpid, port: (dpid, port) in live)
    assert b.admit(DIRECTORY, "02:00:00:00:00:03", 2, 1, None, 0).ok
    refused = b.admit(DIRECTORY, "02:00:00:00:00:03", 3, 4, None, 1)
    assert refused.problem == "location" and b.location("02:00:00:00:00:03") == (2, 1)
    live.clear()
    moved = b.admit(DIRECTORY, "02:00:00:00:00:03", 3, 4, None, 2)
    assert moved.ok and moved.new and b.location("02:00:00:00:00:03") == (3, 4)
    assert [x.host.name for x in b.at_port(3, 4)] == ["db1"] and b.on_switch(2) == []
