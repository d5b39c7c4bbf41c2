"""Core micro-benchmarks: the cost of one policy decision as the rule count grows, of a path
on a 100-switch leaf-spine, and of planning (and encoding) a connection over 6 hops.

    python -m bench.micro"""

from __future__ import annotations

import random
import sys
import timeit

from segctl import ofmsg
from segctl.core.connections import Connection, FlowKey
from segctl.core.decision import DecisionIndex
from segctl.core.directory import Host
from segctl.core.pipeline import Kind, make_cookie
from segctl.core.planner import first_packet_out, plan_connection
from segctl.core.policy import parse_policy
from segctl.core.topology import Topology
from segctl.core.yamlsrc import load_yaml_text

from .workload import make_hosts, policy_text


def best_of(function, number: int, repeat: int = 5) -> float:
    """Seconds per call, best of `repeat` timings of `number` calls."""
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number


def decision_times(
    host_count: int = 10_000, rule_counts=(10, 1_000, 10_000), related: bool = False, cold: bool = False
) -> dict:
    """Seconds per decision between random hosts or, with `related`, hosts some rule links;
    `cold`: every decision made afresh from the bitsets (the decision cache emptied first)."""
    hosts = make_hosts(host_count, 16)
    labels = [{"role": h.role, "site": f"s{i % 10}"} for i, h in enumerate(hosts)]
    rng = random.Random(1)
    times = {}
    for rules in rule_counts:
        policy = parse_policy([(load_yaml_text(policy_text(rules), "p.yaml"), "p.yaml")])
        index = DecisionIndex(policy)
        pairs = []
        while len(pairs) < 10_000:
            src, dst = rng.choice(labels), rng.choice(labels)
            if not related or index.peers(src, dst):
                pairs.append((src, dst, rng.choice((22, 443, 1005, 9))))
        for src, dst, _ in pairs:  # first sight of a label set builds its bitsets; then cached
            index.host_bits(src), index.host_bits(dst)
        first_rule = index.first_rule

        def decide(first_rule=first_rule, index=index, pairs=pairs):
            if cold:
                index._decisions.clear()
            for src, dst, port in pairs:
                first_rule(src, dst, "tcp", port)

        times[rules] = best_of(decide, 1) / len(pairs)
    return times


def leaf_spine(spines: int = 4, leaves: int = 96) -> Topology:
    topology = Topology()
    for spine in range(1, spines + 1):
        topology.add_switch(1000 + spine, range(1, leaves + 1))
    for leaf in range(1, leaves + 1):
        topology.add_switch(leaf, range(1, spines + 49))
        for spine in range(1, spines + 1):
            topology.add_link(leaf, 48 + spine, 1000 + spine, leaf)
    return topology


def path_time() -> float:
    topology = leaf_spine()
    rng = random.Random(2)
    pairs = [((rng.randint(1, 96), rng.randint(1, 48)), (rng.randint(1, 96), rng.randint(1, 48))) for _ in range(1000)]

    def paths():
        for src, dst in pairs:
            topology.path(src, dst)

    return best_of(paths, 1) / len(pairs)


def planning_times(stateful: bool = False) -> tuple[float, float, int]:
    """(plan a 6-hop connection, encode its messages to OpenFlow bytes), seconds each, and how
    many messages; `stateful`: a service's on the stateful pipeline."""
    topology = Topology()
    for dpid in range(1, 7):
        topology.add_switch(dpid, (1, 2, 3))
    for dpid in range(1, 6):
        topology.add_link(dpid, 2, dpid + 1, 3)
    path = topology.path((1, 1), (6, 1))
    assert len(path) == 6
    src = Host("a", "02:00:00:00:00:01", "10.0.0.1", {"role": "a"})
    dst = Host("b", "02:00:00:00:00:02", "10.0.0.2", {"role": "b"})
    key = FlowKey(src.mac, dst.mac, src.ip, dst.ip, 6, 40000, 443)
    if stateful:
        key = key.service()
    cookie = make_cookie(Kind.CONNECTION, 1, 1)
    connection = Connection(1, key, src, dst, "r", path, 0.0, cookie, reply_key=key.reverse(), stateful=stateful)
    frame = bytes(74)

    def plan():
        plan_connection(connection) + [first_packet_out(connection, frame)]

    messages = plan_connection(connection) + [first_packet_out(connection, frame)]

    def encode():
        for message in messages:
            ofmsg.encode(message)

    return best_of(plan, 2000), best_of(encode, 2000), len(messages)


AUDIT_DIRECTORY = """
hosts:
  a: {mac: "02:00:00:00:00:01", ip: 10.0.0.1, labels: {role: a}}
  b: {mac: "02:00:00:00:00:02", ip: 10.0.0.2, labels: {role: b}}
"""
AUDIT_POLICY = "rules:\n  - {name: a-to-b, from: {role: a}, to: {role: b}, proto: tcp, ports: [443]}\n"


def audit_times(connections: int = 5_000, per_part: int = 300) -> tuple[int, float, float]:
    """A switch holding `connections` TCP connections (three entries each: both directions and
    the server-side drop): (entries, seconds for its first audit, seconds for the next one of the
    same table). The answer comes in parts of `per_part` entries, as a switch sends it."""
    from segctl.core.controller import Controller
    from segctl.core.directory import parse_directory
    from segctl.core.flows import FlowAdd
    from segctl.core.packets import build_arp

    directory = parse_directory(load_yaml_text(AUDIT_DIRECTORY, "d.yaml"), "d.yaml")
    policy = parse_policy([(load_yaml_text(AUDIT_POLICY, "p.yaml"), "p.yaml")])
    core = Controller(directory, policy, audit_interval=30)
    table: dict = {}

    def take(messages):
        for m in messages:
            if isinstance(m, FlowAdd):
                table[(m.priority, m.match)] = m

    take(core.switch_up(1, [1, 2], 0.0))
    for mac, ip, port in (("02:00:00:00:00:01", "10.0.0.1", 1), ("02:00:00:00:00:02", "10.0.0.2", 2)):
        take(core.packet_in(1, port, build_arp(1, mac, "ff:ff:ff:ff:ff:ff", mac, ip, "00:00:00:00:00:00", ip), 0.0))
    # A SYN from a (10.0.0.1) to b (10.0.0.2):443; its source port is set per connection below.
    syn = bytearray.fromhex("02000000000202000000000108004500002800010000400600000a0000010a000002")
    syn += bytes.fromhex("000001bb") + bytes(8) + bytes.fromhex("5002ffff") + bytes(4)
    for n in range(connections):
        syn[34:36] = (1024 + n).to_bytes(2, "big")
        take(core.packet_in(1, 1, bytes(syn), 0.001 * n))
    entries = list(table.values())
    parts = [ofmsg.encode_flow_stats_reply(entries[at : at + per_part]) for at in range(0, len(entries), per_part)]
    known: dict = {}

    def read_and_audit():
        """One audit as the Ryu app runs it: each part decoded (what the last answer held is
        not decoded again) and held against what segctl expects."""
        nonlocal known
        seen: dict = {}
        core.auditor.begin(1, 100.0)
        for part in parts:
            _, decoded = ofmsg.decode_flow_stats(part, known, seen)
            assert not core.audit_observe(1, decoded, 100.0)
        assert not core.audit_finish(1, 100.0)
        known = seen

    cold = best_of(read_and_audit, 1, 1)
    return len(entries), cold, best_of(read_and_audit, 1, 3)


def main() -> int:
    print("| measure | time | ratio |")
    print("|---|---|---|")
    for cold, made in ((True, "first time"), (False, "repeated")):
        for related, pairs in ((False, "random pairs"), (True, "pairs some rule links")):
            decisions = decision_times(related=related, cold=cold)
            base = decisions[10]
            for rules, seconds in decisions.items():
                ratio = f"{seconds / base:.2f}× the 10-rule time"
                print(
                    f"| decision ({made}), {rules:,} rules, 10,000 hosts, {pairs} | {seconds * 1e6:.2f} µs | {ratio} |"
                )
    print(f"| path, 100-switch leaf-spine (4 spines, 96 leaves) | {path_time() * 1e6:.1f} µs | |")
    plan, encode, count = planning_times()
    print(f"| plan a connection over 6 hops ({count - 1} entries + packet-out) | {plan * 1e6:.1f} µs | |")
    print(f"| encode those {count} messages to OpenFlow bytes | {encode * 1e6:.1f} µs | |")
    service_plan, service_encode, count = planning_times(stateful=True)
    print(
        f"| stateful pipeline: plan a service over 6 hops ({count - 1} entries + packet-out) "
        f"| {service_plan * 1e6:.1f} µs | {service_plan / plan:.2f}× a connection's |"
    )
    print(
        f"| ... encode those {count} messages | {service_encode * 1e6:.1f} µs "
        f"| {service_encode / encode:.2f}× a connection's |"
    )
    entries, first, next_ = audit_times()
    print(
        f"| flow-table audit of a switch with {entries:,} entries (decode, check), first read | "
        f"{first * 1e3:.0f} ms | {first / entries * 1e6:.1f} µs an entry |"
    )
    print(
        f"| ... the next read of the same entries (neither decoded nor checked again) | {next_ * 1e3:.0f} ms | "
        f"{next_ / entries * 1e6:.1f} µs an entry |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
