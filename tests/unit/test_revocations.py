"""Revoking many connections at once (a reload): the entries of exactly the revoked connections
go, in as few deletes as the connections that stay allow (segctl.core.revocations)."""

import random

import pytest

from segctl.core.connections import Connection, FlowKey
from segctl.core.directory import Host
from segctl.core.flows import Barrier, FlowDelete
from segctl.core.pipeline import (
    CONNECTION_BANDS,
    Kind,
    connection_cookie,
    connections_cookie,
    make_cookie,
    parse_cookie,
)
from segctl.core.planner import plan_connection, plan_later_fragments
from segctl.core.revocations import CLIENT_MASK, plan_revocations
from segctl.core.topology import Hop

from ..fakenet import DB, DIRECTORY, WEB, Net
from ..fakeswitch import FakeFabric
from .helpers import connection_between, directory, policy
from .test_exactness import PING_D, TWO_PROTOCOLS, forwards, open_connection

NOTHING_ALLOWED = "rules: []\n"


def connection_deletes(messages) -> list[FlowDelete]:
    """The deletes of connection entries (a reload also clears cached denials, by kind)."""
    return [m for m in messages if isinstance(m, FlowDelete) and parse_cookie(m.cookie)[0].connection_scoped]


def reload(net, policy_text):
    messages, revoked = net.core.reload(directory(DIRECTORY), policy(policy_text), net.now)
    net.fabric.apply(messages)
    return messages, revoked


def four_connections(net):
    net.announce()
    open_connection(net, WEB, DB, 40000, 5432)
    open_connection(net, WEB, DB, 40001, 5432)
    open_connection(net, WEB, DB, 40002, 53, proto=17)
    open_connection(net, *PING_D)  # app -> db, both on leaf 2


def test_a_reload_that_revokes_every_connection_deletes_them_with_one_message_per_switch():
    net = Net(TWO_PROTOCOLS)
    four_connections(net)
    switches = {hop.dpid for c in net.core.connections for hop in c.path}
    messages, revoked = reload(net, NOTHING_ALLOWED)
    assert revoked == 4 and len(net.core.connections) == 0
    assert sorted(connection_deletes(messages), key=lambda m: m.dpid) == [
        FlowDelete(dpid, *connections_cookie()) for dpid in sorted(switches)
    ]
    assert {m.dpid for m in messages if isinstance(m, Barrier)} >= switches
    assert net.fabric.entries_of(*CONNECTION_BANDS) == [] and net.disagreements() == []
    assert not forwards(net, WEB, DB, 40000, 5432)


def test_a_client_none_of_whose_connections_stays_on_a_switch_loses_them_there_in_one_delete():
    net = Net(TWO_PROTOCOLS)
    four_connections(net)
    (ping,) = [c for c in net.core.connections if c.src.name == "app"]
    messages, revoked = reload(net, TWO_PROTOCOLS.split("  - {name: ping-db")[0])
    assert revoked == 1
    # leaf 2 keeps web's connections: app's go by its host id there, web's stay
    assert connection_deletes(messages) == [FlowDelete(2, ping.cookie & CLIENT_MASK, CLIENT_MASK)]
    assert not forwards(net, *PING_D)
    assert forwards(net, WEB, DB, 40000, 5432) and forwards(net, WEB, DB, 40002, 53, proto=17)
    assert net.disagreements() == []


def test_a_connection_whose_client_keeps_another_on_the_same_switches_goes_by_its_own_cookie():
    net = Net(TWO_PROTOCOLS)
    four_connections(net)
    (dns,) = [c for c in net.core.connections if c.key.proto == 17]
    messages, revoked = reload(net, TWO_PROTOCOLS.replace("  - {name: web-to-db-dns", "  # "))
    assert revoked == 1
    assert connection_deletes(messages) == [FlowDelete(hop.dpid, *connection_cookie(dns.cookie)) for hop in dns.path]
    assert not forwards(net, WEB, DB, 40002, 53, proto=17)
    assert forwards(net, WEB, DB, 40000, 5432) and forwards(net, WEB, DB, 40001, 5432) and forwards(net, *PING_D)
    assert net.disagreements() == []


def _random_connections(rng: random.Random, count: int) -> list[Connection]:
    """Connections (and stateful services) of a few clients over paths of one to four switches;
    a few host ids and switches, so that connections share both."""
    hosts = [Host(f"h{n}", f"02:00:00:00:01:{n:02x}", f"10.0.1.{n}") for n in range(1, 5)]
    made = []
    for n in range(count):
        src, dst = rng.sample(hosts, 2)
        key = FlowKey(src.mac, dst.mac, src.ip, dst.ip, 6, 30000 + n, 443 + n)
        switches = rng.sample([1, 2, 3, 101, 102], rng.randint(1, 4))
        path = [Hop(dpid, rng.randint(1, 8), rng.randint(9, 16)) for dpid in switches]
        cookie = make_cookie(Kind.CONNECTION, int(src.name[1:]), 1000 + n)
        stateful = rng.random() < 0.3  # a service on the stateful pipeline: other bands, the same cookies
        connection = connection_between(src, dst, key.service() if stateful else key, path, 1000 + n, cookie)
        connection.stateful = stateful
        made.append(connection)
    return made


@pytest.mark.parametrize("seed", range(30))
def test_revoking_any_share_of_connections_leaves_exactly_the_others_entries(seed):
    rng = random.Random(seed)
    connections = _random_connections(rng, rng.randint(1, 40))
    fabric = FakeFabric()
    for connection in connections:
        entries = plan_connection(connection)
        if rng.random() < 0.3:
            entries += plan_later_fragments(connection, connection.key.pair)
        fabric.apply(entries)
    installed = {id(c): [e for e in fabric.entries() if e.cookie & 0xFFFFFFFF == c.id] for c in connections}
    assert all(installed.values())
    revoked = [c for c in connections if rng.random() < rng.choice([0.1, 0.5, 0.9, 1.0])]
    staying = [c for c in connections if c not in revoked]
    messages = plan_revocations(revoked, staying)
    fabric.apply(messages)
    left = fabric.entries()
    for connection in staying:
        assert all(entry in left for entry in installed[id(connection)]), connection.id
    assert not [e for e in left if e.cookie & 0xFFFFFFFF in {c.id for c in revoked}]
    # never more deletes than one per connection per switch, and a barrier on each switch touched
    deletes = [m for m in messages if isinstance(m, FlowDelete)]
    assert len(deletes) <= sum(len(c.path) for c in revoked)
    assert {m.dpid for m in messages if isinstance(m, Barrier)} == {m.dpid for m in deletes}


def test_nothing_revoked_sends_nothing():
    net = Net()
    net.announce()
    open_connection(net, WEB, DB, 40000, 5432)
    assert plan_revocations([], list(net.core.connections)) == []
