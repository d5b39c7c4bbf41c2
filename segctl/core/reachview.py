"""The blast radius as the API answers it (JSON), joined with the flows recorded between the
host and its first hop, so the engineer sees which open paths are used and which are only open."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from .flowlog import FlowEdge
from .policy import ICMP_TYPES, Rule
from .reach import Reach, Reached

_ICMP_NAMES = {number: name for name, number in ICMP_TYPES.items()}


def _ranges(ranges) -> str:
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def service_text(rule: Rule) -> str:
    """What a rule lets through, as an engineer reads it: `tcp/443,8000-8010`, `udp every port`,
    `icmp echo-request`, `any protocol (icmp: echo-request only)`."""
    if rule.proto == "any":
        return "any protocol (icmp: echo-request only)"
    if rule.proto == "icmp":
        types = rule.service_ranges("icmp") or ()
        named = [_ICMP_NAMES.get(low, str(low)) if low == high else f"{low}-{high}" for low, high in types]
        return "icmp " + ",".join(named)
    return f"{rule.proto}/{_ranges(rule.ports)}" if rule.ports is not None else f"{rule.proto} every port"


def _service(rule: Rule) -> dict:
    icmp = rule.proto in ("icmp", "any")
    return {
        "rule": rule.name,
        "proto": rule.proto,
        "ports": [list(r) for r in rule.ports] if rule.ports is not None else None,
        "icmp_types": [list(r) for r in rule.service_ranges("icmp") or ()] if icmp else None,
        "text": service_text(rule),
    }


def _seen(edges: list[FlowEdge]) -> list[dict]:
    ordered = sorted(edges, key=lambda e: (e.proto, -1 if e.port is None else e.port, e.verdict, e.rule or ""))
    return [
        {
            "proto": e.proto,
            "port": e.port,
            "flows": e.flows,
            "last_seen": e.last_seen,
            "verdict": e.verdict,
            "rule": e.rule,
        }
        for e in ordered
    ]


def reach_json(reach: Reach, attached: Collection[str], edges: Iterable[FlowEdge] | None) -> dict:
    """The answer of `GET /v1/hosts/HOST/reach`. `attached`: names of the hosts bound now.
    `edges`: recorded flows (None: no flow store); the forwarded ones between the host and each
    first-hop host are listed as `seen` (null beyond the first hop, and null without a store:
    unknown, not "never")."""
    name = reach.host.name
    seen: dict[str, list[FlowEdge]] = {}
    for edge in edges or ():
        if not (edge.forwarded and edge.src_known and edge.dst_known):
            continue
        near, far = (edge.dst, edge.src) if reach.reverse else (edge.src, edge.dst)
        if near == name:
            seen.setdefault(far, []).append(edge)

    services: dict[int, dict] = {}  # by rule index: each rule described once, however many hosts

    def entry(reached: Reached) -> dict:
        host = reached.host
        for rule in reached.rules:
            if rule.index not in services:
                services[rule.index] = _service(rule)
        return {
            "host": host.name,
            "labels": dict(host.labels),
            "hop": reached.hop,
            "via": reached.via.name,
            "services": [services[rule.index] for rule in reached.rules],
            "monitored": reached.monitored,
            "attached": host.name in attached,
            "seen": _seen(seen.get(host.name, [])) if reached.hop == 1 and edges is not None else None,
        }

    per_hop = [0] * reach.hops
    for reached in reach.reached:
        per_hop[reached.hop - 1] += 1
    return {
        "host": name,
        "labels": dict(reach.host.labels),
        "direction": "to" if reach.reverse else "from",
        "hops": reach.hops,
        "quarantined": reach.quarantined,
        "flows_recorded": edges is not None,
        "per_hop": per_hop,
        "reached": [entry(reached) for reached in reach.reached],
    }
