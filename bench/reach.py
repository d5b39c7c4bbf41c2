"""Blast radius (`segctl reach`): how long one answer takes on a large network, against a naive
walk over every pair of hosts and every rule on a smaller one.

    python -m bench.reach [--hosts 10000] [--save]

The network: hosts labelled app (200 apps) × role (web, app, db, cache, batch) × env (prod,
staging, dev), plus jump and monitoring hosts; about 1,000 rules: each app's tiers linked in
turn, some apps calling others, prod logging to monitoring, jump hosts reaching every host by
ssh, monitoring pinging every host, and two apps' dev hosts in monitor mode."""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

from segctl.core.decision import DecisionIndex
from segctl.core.directory import Directory, Host
from segctl.core.policy import Policy, parse_policy
from segctl.core.reach import ReachMap
from segctl.core.reachview import reach_json
from segctl.core.yamlsrc import load_yaml_text

APPS = 200
ROLES = (("web", 30), ("app", 30), ("db", 15), ("cache", 10), ("batch", 15))  # role, share in %
ENVS = ("prod", "staging", "dev")
TIERS = (("web", "app", 8080), ("app", "db", 5432), ("app", "cache", 6379), ("batch", "db", 5432))


def network(hosts: int, apps: int = APPS, cross_calls: int = 150, seed: int = 3) -> tuple[Directory, Policy]:
    rng = random.Random(seed)
    roles = [role for role, share in ROLES for _ in range(share)]
    listed = [Host(f"jump{i}", _mac(i), labels={"role": "jump", "env": "prod"}) for i in range(20)]
    listed += [Host(f"mon{i}", _mac(20 + i), labels={"role": "monitoring", "env": "prod"}) for i in range(20)]
    for i in range(40, hosts):
        labels = {"app": f"a{rng.randrange(apps)}", "role": rng.choice(roles), "env": rng.choice(ENVS)}
        listed.append(Host(f"h{i:05d}", _mac(i), labels=labels))
    rules = []
    for app in range(apps):
        for src, dst, port in TIERS:
            rules.append(_rule(f"a{app}-{src}-{dst}", f"app: a{app}, role: {src}", f"app: a{app}, role: {dst}", port))
    for call in range(cross_calls):
        src, dst = rng.randrange(apps), rng.randrange(apps)
        rules.append(_rule(f"call{call}", f"app: a{src}, role: app", f"app: a{dst}, role: app", 443))
    rules += [
        "{name: syslog, from: {env: prod}, to: {role: monitoring}, proto: udp, ports: [514]}",
        "{name: jump-ssh, from: {role: jump}, to: any, proto: tcp, ports: [22]}",
        "{name: ping, from: {role: monitoring}, to: any, proto: icmp}",
    ]
    policy_yaml = "\n".join(
        [
            "groups:",
            "  pilot-a1: {app: a1, env: dev}",
            "  pilot-a2: {app: a2, env: dev}",
            "modes: {pilot-a1: monitor, pilot-a2: monitor}",
            "rules:",
            *[f"  - {rule}" for rule in rules],
        ]
    )
    return Directory(listed), parse_policy([(load_yaml_text(policy_yaml + "\n", "bench.yaml"), "bench.yaml")])


def _rule(name: str, src: str, dst: str, port: int) -> str:
    return f"{{name: {name}, from: {{{src}}}, to: {{{dst}}}, proto: tcp, ports: [{port}]}}"


def _mac(i: int) -> str:
    return "02:" + ":".join(f"{(i >> shift) & 0xFF:02x}" for shift in (32, 24, 16, 8, 0))


def naive_first_hop(directory: Directory, policy: Policy, host: Host, reverse: bool) -> set[str]:
    """Every other host, every rule, one at a time: the reference the compiled walk replaces."""
    monitored = [s for name, s in policy.groups.items() if policy.modes.get(name) == "monitor"]
    found = set()
    for other in directory:
        if other is host:
            continue
        src, dst = (other, host) if reverse else (host, other)
        if any(s.matches(dst.labels) for s in monitored) or any(
            r.src.matches(src.labels) and r.dst.matches(dst.labels) for r in policy.rules
        ):
            found.add(other.name)
    return found


def percentiles(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"{statistics.median(ms):8.2f} {p99:8.2f} {ms[-1]:8.2f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--save", action="store_true", help="also write the table to bench/results/")
    args = parser.parse_args(argv)
    lines = []
    directory, policy = network(args.hosts)
    started = time.perf_counter()
    index = DecisionIndex(policy)
    reach_map = ReachMap(directory, index, quarantined=())
    compiled_at = time.perf_counter()
    ReachMap(directory, index, quarantined=[asked.name for asked in list(directory)[:10]])
    lines.append(
        f"{len(directory):,} hosts in {len(reach_map.sets):,} label sets, {len(policy.rules):,} rules; "
        f"compiled (decision index + reach map) in {(compiled_at - started) * 1000:.0f} ms; the reach map "
        f"again after a quarantine (label sets' bitsets known) in {(time.perf_counter() - compiled_at) * 1000:.0f} ms"
    )
    rng = random.Random(5)
    asked = rng.sample(list(directory), args.questions)
    lines.append(f"\n{args.questions} random hosts each, ms per answer:")
    lines.append(f"{'question':<28} {'p50':>8} {'p99':>8} {'max':>8} {'hosts listed (mean)':>20}")
    for reverse in (False, True):
        for hops in (1, 3):
            walk, answer, listed = [], [], []
            for host in asked:
                started = time.perf_counter()
                result = reach_map.reach(host, hops, reverse)
                walk.append(time.perf_counter() - started)
                reach_json(result, attached=(), edges=())
                answer.append(time.perf_counter() - started)
                listed.append(len(result.reached))
            name = f"{'--to' if reverse else 'from'} --hops {hops}"
            lines.append(f"{name + ', walk':<28} {percentiles(walk)} {statistics.mean(listed):20,.0f}")
            lines.append(f"{name + ', walk + JSON':<28} {percentiles(answer)}")
    small_hosts = 2_000
    small_directory, small_policy = network(small_hosts, apps=40, cross_calls=30)
    small_map = ReachMap(small_directory, DecisionIndex(small_policy), ())
    sample = random.Random(6).sample(list(small_directory), 10)
    naive, compiled = [], []
    for host in sample:
        for reverse in (False, True):
            started = time.perf_counter()
            expected = naive_first_hop(small_directory, small_policy, host, reverse)
            naive.append(time.perf_counter() - started)
            started = time.perf_counter()
            got = {r.host.name for r in small_map.reach(host, 1, reverse).reached}
            compiled.append(time.perf_counter() - started)
            assert got == expected, (host.name, reverse)
    ratio = statistics.median(naive) / statistics.median(compiled)
    lines.append(
        f"\nagainst a naive walk over every host and rule ({small_hosts:,} hosts, {len(small_policy.rules)} rules, "
        f"hop 1, both directions, 10 hosts; the answers agree): naive {statistics.median(naive) * 1000:.1f} ms, "
        f"compiled {statistics.median(compiled) * 1000:.2f} ms (medians): {ratio:,.0f} × faster"
    )
    text = "\n".join(lines)
    print(text)
    if args.save:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        stored = os.path.join(root, "bench", "results", time.strftime("%Y-%m-%dT%H%MZ-reach.txt", time.gmtime()))
        with open(stored, "w") as handle:
            handle.write(f"python -m bench.reach {' '.join(argv or sys.argv[1:])}\n\n{text}\n")
        print(f"wrote {os.path.relpath(stored, root)}")


if __name__ == "__main__":
    main()
