"""What-if replay of a draft policy over a million recorded flows (goal: under 60 s).

10,000 directory hosts in 50 roles (x 2 environments x 10 sites: 1,000 label sets); 1,000,000
flows, most of them on a few hot services between few pairs, the rest a long tail of distinct
pairs and ports. The flows are summed into FlowEdges as the flow store hands them out, then
replayed against a running policy of 100 rules and a draft that drops two rules, adds one and
monitors one role.

    python -m bench.replay [--flows 1000000] [--out FILE]"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter

from segctl.core.decision import DecisionIndex
from segctl.core.flowlog import ALLOWED, DENIED, MONITORED, FlowEdge, Observation
from segctl.core.policy import parse_policy
from segctl.core.replay import replay
from segctl.core.yamlsrc import load_yaml_text
from segctl.flowstore import FlowStore

HOSTS, ROLES, RULES = 10_000, 50, 100
HOT_SERVICES = 2_000  # (src, dst, port) that carry most flows
HOT_SHARE = 0.8
TAIL_PORTS = [22, 53, 80, 123, 443, 445, 1433, 3306, 5432, 6379, 8080, 8443, 9090, 9100, 27017]


def world(seed: int = 7):
    rng = random.Random(seed)
    labels = {
        f"h{i}": {"role": f"r{rng.randrange(ROLES)}", "env": rng.choice(("prod", "dev")), "site": f"s{i % 10}"}
        for i in range(HOSTS)
    }
    rules = []
    for number in range(RULES):
        src, dst, port = rng.randrange(ROLES), rng.randrange(ROLES), rng.choice(TAIL_PORTS)
        rules.append(
            f"  - {{name: rule{number}, from: {{role: r{src}}}, to: {{role: r{dst}}}, proto: tcp, ports: [{port}]}}"
        )
    running = "rules:\n" + "\n".join(rules) + "\n"
    # The draft: two rules gone, one added, role r7 monitored.
    draft_rules = rules[2:] + ["  - {name: new-dns, from: any, to: {role: r3}, proto: udp, ports: [53]}"]
    draft = "groups: {r7: {role: r7}}\nmodes: {r7: monitor}\nrules:\n" + "\n".join(draft_rules) + "\n"
    return rng, labels, running, draft


def recorded_edges(flows: int, rng: random.Random, labels: dict, running: DecisionIndex) -> list[FlowEdge]:
    """`flows` flows summed per (src, dst, proto, port, verdict, rule), as the store returns them."""
    names = list(labels)
    hot = [(rng.choice(names), rng.choice(names), rng.choice(TAIL_PORTS[:5]), "tcp") for _ in range(HOT_SERVICES)]
    weights = [1.0 / (rank + 1) for rank in range(HOT_SERVICES)]  # Zipf: a few services carry most
    counts: Counter = Counter(rng.choices(hot, weights, k=int(flows * HOT_SHARE)))
    for _ in range(flows - int(flows * HOT_SHARE)):
        proto = "udp" if rng.random() < 0.1 else "tcp"
        counts[(rng.choice(names), rng.choice(names), rng.choice(TAIL_PORTS), proto)] += 1
    edges = []
    for (src, dst, port, proto), count in counts.items():
        outcome = running.outcome(labels[src], labels[dst], proto, port)
        verdict = ALLOWED if outcome.rule else (MONITORED if outcome.forwarded else DENIED)
        rule = outcome.rule.name if outcome.rule else None
        edges.append(
            FlowEdge(src, True, dst, True, proto, port, verdict, rule, count, 0.0, 1.0, labels[src], labels[dst])
        )
    return edges


def _observation(edge: FlowEdge, now: float) -> Observation:
    """An edge as one recorded observation standing for its flows (`count`)."""
    return Observation(
        now, edge.src, True, edge.dst, True, edge.proto, edge.port, edge.verdict, edge.rule, None, edge.flows
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    rng, labels, running_text, draft_text = world()
    running = DecisionIndex(parse_policy([(load_yaml_text(running_text, "running"), "running")]))
    started = time.perf_counter()
    edges = recorded_edges(args.flows, rng, labels, running)
    built = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        store = FlowStore(os.path.join(folder, "flows.sqlite"))
        now = time.time()
        started = time.perf_counter()
        store.record([_observation(edge, now) for edge in edges], labels.get)
        stored = time.perf_counter() - started
        started = time.perf_counter()
        edges = store.edges(since=86400.0, now=now)
        read = time.perf_counter() - started
    started = time.perf_counter()
    draft = DecisionIndex(parse_policy([(load_yaml_text(draft_text, "draft"), "draft")]))
    report = replay(edges, draft, DecisionIndex(running.policy), labels.get)
    answer = report.to_json(10)
    seconds = time.perf_counter() - started
    assert answer["replayed"]["flows"] == args.flows
    print("| measure | result |")
    print("|---|---|")
    print(f"| recorded flows / edges (distinct src, dst, service) | {args.flows:,} / {len(edges):,} |")
    print(f"| distinct decisions (label-set pair and service) | {report.decisions:,} |")
    rate = f"{seconds:.1f} s, {args.flows / seconds:,.0f} flows/s"
    print(f"| replay, end to end (both policies, report with top pairs) | {rate} |")
    print(
        f"| result | newly denied {answer['newly_denied']['flows']:,}, newly allowed "
        f"{answer['newly_allowed']['flows']:,}, monitored {answer['would_deny_once_enforced']['flows']:,} flows |"
    )
    print(f"| reading them from a flow store (SQLite, `edges(since=24h)`) | {read:.1f} s |")
    print(f"| **read and replay** | **{read + seconds:.1f} s** (goal: under 60 s) |")
    print(f"| (not timed) making the flows, and writing them into the store | {built:.1f} s, {stored:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
