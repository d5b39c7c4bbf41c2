"""The JSON views the API serves (GET /v1/hosts, /v1/hosts/HOST, /v1/quarantine) and the
quarantine's persistence, from the controller core (issue 18: the API tests are too slow for
`make mutate`, so these views had no test there)."""

import pytest

from segctl import views
from segctl.core.controller import Controller, UnknownHost
from segctl.core.ledger import STRANGERS_LIMIT
from segctl.core.macs import NotAHostMac

from ..fakenet import APP, DB, POLICY, ROGUE, WEB, Net, arp_request, tcp
from .helpers import directory, policy

# db has no address in the directory: it is learned from what db sends.
HOSTS = """
hosts:
  web: {mac: "02:00:00:00:00:01", ip: 10.0.0.1, labels: {role: web, env: prod}}
  db:  {mac: "02:00:00:00:00:02", labels: {role: db}}
  app: {mac: "02:00:00:00:00:03", ip: 10.0.0.3, labels: {role: app}, switch: 2, port: 2}
"""
WITH_ROGUE = HOSTS + '  intruder: {mac: "02:00:00:00:00:99", ip: 10.0.0.9, labels: {role: guest}}\n'


def make_net(hosts=HOSTS):
    return Net(core=Controller(directory(hosts), policy(POLICY)))


def view(name, mac, ip, labels, location, state, pin=None):
    return {"name": name, "mac": mac, "ip": ip, "labels": labels, "location": location, "state": state, "pin": pin}


def test_the_hosts_view_shows_each_directory_host_where_and_in_what_state_it_is():
    net = make_net()
    web = view("web", WEB, "10.0.0.1", {"role": "web", "env": "prod"}, None, "unknown")
    db = view("db", DB, None, {"role": "db"}, None, "unknown")
    app = view("app", APP, "10.0.0.3", {"role": "app"}, None, "unknown", pin={"dpid": 2, "port": 2})
    assert views.hosts_view(net.core.ledger) == [web, db, app]
    net.announce()
    web["location"], web["state"] = {"dpid": 1, "port": 1}, "authenticated"
    db["location"], db["state"], db["ip"] = {"dpid": 2, "port": 1}, "authenticated", "10.0.0.2"
    app["location"], app["state"] = {"dpid": 2, "port": 2}, "authenticated"
    assert views.hosts_view(net.core.ledger) == [web, db, app]
    assert views.find_host_view(net.core.ledger, "db") == db
    assert views.find_host_view(net.core.ledger, "02:00:00:00:00:01".upper()) == web
    assert views.find_host_view(net.core.ledger, "nobody") is None
    assert views.find_host_view(net.core.ledger, "02:00:00:00:00:42") is None
    net.fabric.apply(net.core.quarantine("web", "EDR", net.now))
    assert views.find_host_view(net.core.ledger, "web")["state"] == "quarantined"
    assert [v["state"] for v in views.hosts_view(net.core.ledger)] == ["quarantined", "authenticated", "authenticated"]


def test_devices_the_directory_does_not_know_are_listed_and_found_by_mac():
    net = make_net()
    net.send(1, 3, tcp(ROGUE, DB, "10.0.0.9", "10.0.0.2", 1, 5432))
    seen = round(net.now, 6)
    stranger = {
        "name": None,
        "mac": ROGUE,
        "ip": "10.0.0.9",
        "labels": {},
        "location": {"dpid": 1, "port": 3},
        "state": "unknown",
        "last_seen": pytest.approx(seen),
    }
    assert views.hosts_view(net.core.ledger)[3:] == [stranger]
    assert views.find_host_view(net.core.ledger, ROGUE.upper()) == stranger
    assert views.find_host_view(net.core.ledger, "intruder") is None
    # cut off by MAC: it is a quarantined stranger
    net.fabric.apply(net.core.quarantine(ROGUE, "unknown device", net.now, by="soc"))
    assert views.find_host_view(net.core.ledger, ROGUE)["state"] == "quarantined"
    assert views.quarantine_view(net.core.ledger) == [
        {"host": ROGUE, "mac": ROGUE, "reason": "unknown device", "since": net.now, "by": "soc"}
    ]
    # the directory learns it under a name: still quarantined
    net.core.reload(directory(WITH_ROGUE), policy(POLICY), net.now)
    intruder = views.find_host_view(net.core.ledger, "intruder")
    assert (intruder["mac"], intruder["state"]) == (ROGUE, "quarantined")


def test_a_device_quarantined_by_mac_can_be_released_after_the_directory_names_it():
    net = make_net()
    net.fabric.apply(net.core.quarantine(ROGUE, "unknown device", net.now))
    net.core.reload(directory(WITH_ROGUE), policy(POLICY), net.now)
    assert views.find_host_view(net.core.ledger, "intruder")["state"] == "quarantined"
    net.fabric.apply(net.core.release(ROGUE, net.now))
    assert views.find_host_view(net.core.ledger, "intruder")["state"] == "unknown"
    assert views.quarantine_view(net.core.ledger) == []


def test_a_quarantined_host_whose_mac_the_directory_changes_stays_quarantined():
    net = make_net()
    net.announce()
    net.fabric.apply(net.core.quarantine("web", "EDR", net.now))
    new_mac = "02:00:00:00:00:11"
    net.core.reload(directory(HOSTS.replace(WEB, new_mac)), policy(POLICY), net.now)
    assert views.find_host_view(net.core.ledger, "web")["state"] == "quarantined"
    net.send(1, 2, arp_request(new_mac, "10.0.0.1", "10.0.0.1"))
    net.send(1, 2, tcp(new_mac, DB, "10.0.0.1", "10.0.0.2", 40000, 5432))
    assert len(net.core.connections) == 0


def test_a_device_the_directory_named_quarantined_and_forgot_again_is_listed_quarantined():
    net = make_net()
    net.send(1, 3, arp_request(ROGUE, "10.0.0.9", "10.0.0.9"))
    net.core.reload(directory(WITH_ROGUE), policy(POLICY), net.now)
    net.fabric.apply(net.core.quarantine("intruder", "EDR", net.now))
    net.core.reload(directory(HOSTS), policy(POLICY), net.now)
    (stranger,) = [v for v in views.hosts_view(net.core.ledger) if v["name"] is None]
    assert (stranger["mac"], stranger["state"]) == (ROGUE, "quarantined")


def test_a_device_the_directory_names_is_not_listed_as_a_stranger_too():
    net = make_net()
    net.send(1, 3, arp_request(ROGUE, "10.0.0.9", "10.0.0.9"))
    net.core.reload(directory(WITH_ROGUE), policy(POLICY), net.now)
    assert [v["name"] for v in views.hosts_view(net.core.ledger) if v["mac"] == ROGUE] == ["intruder"]


def test_a_stranger_that_the_directory_later_knows_is_no_longer_listed_as_one():
    net = make_net()
    net.send(1, 3, arp_request(ROGUE, "10.0.0.9", "10.0.0.9"))
    assert [v["mac"] for v in views.hosts_view(net.core.ledger) if v["name"] is None] == [ROGUE]
    net.core.reload(directory(WITH_ROGUE), policy(POLICY), net.now)
    net.advance(10)  # its guard times out
    net.send(1, 3, arp_request(ROGUE, "10.0.0.9", "10.0.0.9"))
    assert views.find_host_view(net.core.ledger, "intruder")["state"] == "authenticated"
    assert [v for v in views.hosts_view(net.core.ledger) if v["name"] is None] == []


def test_at_most_strangers_limit_strangers_are_remembered_the_newest():
    core = Controller(directory(HOSTS), policy(POLICY))
    core.switch_up(1, [1], 100.0)
    macs = [f"02:00:00:01:{i >> 8:02x}:{i & 0xFF:02x}" for i in range(STRANGERS_LIMIT + 1)]
    for i, mac in enumerate(macs):
        # each from a port of its own, so no port runs out of its denial budget
        core.packet_in(1, 1000 + i, arp_request(mac, "10.9.0.1", "10.9.0.1"), 100.0)
    strangers = [v["mac"] for v in views.hosts_view(core.ledger) if v["name"] is None]
    assert strangers == macs[1:]


def test_quarantines_restored_after_a_restart_are_applied_to_each_switch_that_connects():
    saved = [
        {"host": "web", "mac": WEB, "reason": "EDR", "since": 42.5, "by": "soc"},
        {"host": "old", "mac": "02:00:00:00:00:77", "reason": "gone", "since": 7.0, "by": ""},
    ]
    core = Controller(directory(HOSTS), policy(POLICY))
    core.restore_quarantine([dict(item) for item in saved])
    assert views.quarantine_view(core.ledger) == saved
    net = Net(core=core)
    net.announce()
    packet = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432)
    for dpid, port in ((1, 1), (101, 1), (2, 10)):
        assert net.trace(dpid, port, packet) == ("drop", dpid)
    assert views.find_host_view(net.core.ledger, "web")["state"] == "quarantined"
    # a quarantined name the directory no longer has can still be released, by name
    assert net.core.quarantine_target("old") == ("old", "02:00:00:00:00:77")
    net.fabric.apply(net.core.release("old", net.now))
    net.fabric.apply(net.core.release("web", net.now))
    assert views.quarantine_view(net.core.ledger) == []
    assert net.trace(1, 1, packet)[0] != "drop"


def test_releasing_one_host_keeps_the_others_quarantined():
    net = make_net()
    net.announce()
    net.fabric.apply(net.core.quarantine("web", "one", net.now))
    net.fabric.apply(net.core.quarantine("db", "two", net.now))
    net.fabric.apply(net.core.release("web", net.now))
    assert [e["host"] for e in views.quarantine_view(net.core.ledger)] == ["db"]
    assert net.trace(1, 1, tcp(WEB, APP, "10.0.0.1", "10.0.0.3", 40000, 80)) == ("controller", 1)
    assert net.trace(2, 1, tcp(DB, APP, "10.0.0.2", "10.0.0.3", 40000, 80)) == ("drop", 2)
    assert net.trace(2, 2, tcp(APP, DB, "10.0.0.3", "10.0.0.2", 40000, 5432)) == ("drop", 2)


def test_quarantine_takes_a_directory_name_or_a_host_mac_and_nothing_else():
    core = Controller(directory(HOSTS), policy(POLICY))
    assert core.quarantine_target("web") == ("web", WEB)
    assert core.quarantine_target(DB.upper()) == ("db", DB)
    assert core.quarantine_target("02-00-00-00-00-42") == ("02:00:00:00:00:42", "02:00:00:00:00:42")
    with pytest.raises(UnknownHost):
        core.quarantine_target("nobody")
    with pytest.raises(NotAHostMac):
        core.quarantine_target("ff:ff:ff:ff:ff:ff")


def test_releasing_the_later_of_two_quarantined_hosts_releases_that_one():
    net = make_net()
    net.announce()
    net.fabric.apply(net.core.quarantine("web", "one", net.now))
    net.fabric.apply(net.core.quarantine("db", "two", net.now))
    net.fabric.apply(net.core.release("db", net.now))
    assert [e["host"] for e in views.quarantine_view(net.core.ledger)] == ["web"]


def test_a_stranger_the_directory_names_does_not_hide_the_strangers_after_it():
    net = make_net()
    other = "02:00:00:00:00:98"
    net.send(1, 3, arp_request(ROGUE, "10.0.0.9", "10.0.0.9"))
    net.send(1, 2, arp_request(other, "10.0.0.8", "10.0.0.8"))
    net.core.reload(directory(WITH_ROGUE), policy(POLICY), net.now)
    assert [v["mac"] for v in views.hosts_view(net.core.ledger) if v["name"] is None] == [other]
