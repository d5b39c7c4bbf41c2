"""The switch fabric as a networkx graph, and paths between host attachment points."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import networkx as nx


@dataclass(frozen=True, slots=True)
class Hop:
    """One switch on a path: the packet enters by `in_port` and leaves by `out_port`."""

    dpid: int
    in_port: int
    out_port: int


# Paths are made of shared hops: the connections through a switch between the same two ports
# hold one Hop, not one each (a connection's memory is mostly its own; see BENCHMARKS.md).
shared_hop = functools.lru_cache(maxsize=1 << 16)(Hop)


def reverse_hops(hops: list[Hop]) -> list[Hop]:
    """The same path walked the other way: a connection's replies."""
    return [shared_hop(hop.dpid, hop.out_port, hop.in_port) for hop in reversed(hops)]


class Topology:
    """Switches, their live ports, and switch-to-switch links. Every other live port faces hosts."""

    def __init__(self) -> None:
        self.graph = nx.Graph()
        self.ports: dict[int, set[int]] = {}
        self.link_ports: dict[tuple[int, int], tuple[int, int]] = {}

    # -- changes -----------------------------------------------------------------------------
    def add_switch(self, dpid: int, ports=()) -> None:
        self.graph.add_node(dpid)
        self.ports[dpid] = set(ports)

    def remove_switch(self, dpid: int) -> list[tuple[int, int, int, int]]:
        """Forget a switch; returns the links that went with it."""
        gone = [link for link in self.links() if dpid in (link[0], link[2])]
        for a, a_port, b, b_port in gone:
            self.remove_link(a, a_port, b, b_port)
        if dpid in self.graph:
            self.graph.remove_node(dpid)
        self.ports.pop(dpid, None)
        return gone

    def set_port(self, dpid: int, port: int, live: bool) -> None:
        ports = self.ports.setdefault(dpid, set())
        if live:
            ports.add(port)
        else:
            ports.discard(port)

    def add_link(self, a: int, a_port: int, b: int, b_port: int) -> bool:
        """Record a link; False when it was already known."""
        if self.link_ports.get((a, a_port)) == (b, b_port):
            return False
        self.link_ports[(a, a_port)] = (b, b_port)
        self.link_ports[(b, b_port)] = (a, a_port)
        self._connect(a, a_port, b, b_port)
        return True

    def _connect(self, a: int, a_port: int, b: int, b_port: int) -> None:
        existing = self.graph.get_edge_data(a, b)
        # Parallel links: keep the lowest port pair so path choice is deterministic.
        if existing is None or existing["ports"][a] > a_port:
            self.graph.add_edge(a, b, ports={a: a_port, b: b_port})

    def remove_link(self, a: int, a_port: int, b: int, b_port: int) -> bool:
        """Forget a link; False when it was not known."""
        if self.link_ports.get((a, a_port)) != (b, b_port):
            return False
        del self.link_ports[(a, a_port)]
        self.link_ports.pop((b, b_port), None)
        if self.graph.has_edge(a, b) and self.graph.edges[a, b]["ports"][a] == a_port:
            self.graph.remove_edge(a, b)
            for (x, x_port), (y, y_port) in self.link_ports.items():
                if {x, y} == {a, b}:
                    self._connect(x, x_port, y, y_port)
        return True

    # -- questions ---------------------------------------------------------------------------
    def links(self) -> list[tuple[int, int, int, int]]:
        return [(a, ap, b, bp) for (a, ap), (b, bp) in self.link_ports.items() if (a, ap) < (b, bp)]

    def is_link_port(self, dpid: int, port: int) -> bool:
        return (dpid, port) in self.link_ports

    def is_live(self, dpid: int, port: int) -> bool:
        return port in self.ports.get(dpid, ())

    def edge_ports(self) -> list[tuple[int, int]]:
        """Every live port with no switch on the other end, in a stable order."""
        return sorted(
            (dpid, port) for dpid, ports in self.ports.items() for port in ports if (dpid, port) not in self.link_ports
        )

    def path(self, src: tuple[int, int], dst: tuple[int, int]) -> list[Hop] | None:
        """Hops from host attachment `src` (dpid, port) to `dst`, or None when unreachable."""
        (src_dpid, src_port), (dst_dpid, dst_port) = src, dst
        if src_dpid not in self.graph or dst_dpid not in self.graph:
            return None
        if src_dpid == dst_dpid:
            return [shared_hop(src_dpid, src_port, dst_port)]
        try:
            switches = nx.shortest_path(self.graph, src_dpid, dst_dpid)
        except nx.NetworkXNoPath:
            return None
        hops = []
        in_port = src_port
        for here, there in zip(switches, switches[1:]):
            ports = self.graph.edges[here, there]["ports"]
            hops.append(shared_hop(here, in_port, ports[here]))
            in_port = ports[there]
        hops.append(shared_hop(dst_dpid, in_port, dst_port))
        return hops
