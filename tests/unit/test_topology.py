from segctl.core.topology import Hop, Topology

# leaf-spine: leaves 1,2 ; spines 101,102 ; leaf port 10 -> spine1, 11 -> spine2
LINKS = [(1, 10, 101, 1), (1, 11, 102, 1), (2, 10, 101, 2), (2, 11, 102, 2)]


def fabric() -> Topology:
    topo = Topology()
    for dpid, ports in ((1, [1, 2, 10, 11]), (2, [1, 10, 11]), (101, [1, 2]), (102, [1, 2])):
        topo.add_switch(dpid, ports)
    for link in LINKS:
        assert topo.add_link(*link)
    return topo


def test_paths_edge_ports_and_failover():
    topo = fabric()
    assert topo.edge_ports() == [(1, 1), (1, 2), (2, 1)]
    assert topo.path((1, 1), (1, 2)) == [Hop(1, 1, 2)]
    path = topo.path((1, 1), (2, 1))
    assert path[0].dpid == 1 and path[-1] == Hop(2, path[-1].in_port, 1) and len(path) == 3
    spine = path[1].dpid
    link = next(link for link in LINKS if link[0] == 1 and link[2] == spine)
    assert topo.remove_link(*link) and not topo.remove_link(*link)
    other = topo.path((1, 1), (2, 1))
    assert other[1].dpid != spine and len(other) == 3
    links = topo.links()
    kept = next(link for link in LINKS if link[0] == 1 and link[2] == other[1].dpid)
    assert not topo.add_link(*kept)  # a link seen again is no news and changes nothing
    assert topo.links() == links and topo.path((1, 1), (2, 1)) == other
    assert topo.add_link(*link) and not topo.add_link(*link)  # the lost one coming back is news
    assert topo.remove_link(*link)
    topo.remove_switch(101)
    topo.remove_switch(102)
    assert topo.path((1, 1), (2, 1)) is None
    assert topo.path((1, 1), (9, 1)) is None


def test_parallel_links_keep_the_lowest_port_and_survive_one_loss():
    topo = Topology()
    topo.add_switch(1, [1, 5, 6])
    topo.add_switch(2, [1, 5, 6])
    topo.add_link(1, 6, 2, 6)
    topo.add_link(1, 5, 2, 5)
    assert topo.path((1, 1), (2, 1)) == [Hop(1, 1, 5), Hop(2, 5, 1)]
    topo.remove_link(1, 5, 2, 5)
    assert topo.path((1, 1), (2, 1)) == [Hop(1, 1, 6), Hop(2, 6, 1)]
    assert topo.is_link_port(1, 6) and not topo.is_link_port(1, 5)
    topo.set_port(1, 1, False)
    assert not topo.is_live(1, 1) and (1, 1) not in topo.edge_ports()
