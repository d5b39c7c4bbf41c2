"""`make lab SCENARIO=rollout`: a flat network taken to default deny without breaking it.

The lab starts with every group in monitor mode and no rule; its hosts run the services the
shipped policy expects, plus a little stray traffic; then, through the `segctl` command line:
the map of who talks to whom, a suggested policy, its replay against what was recorded, and the
draft applied with enforcement for two groups, then for all. The access matrix is checked
after each step, and the traffic mix once more at the end (expected services pass, stray
traffic is denied, each seen at its destination).
"""

from __future__ import annotations

import os
import time

from segctl.core.decision import DecisionIndex
from segctl.core.policy import Policy, load_policy
from segctl.core.yamlsrc import load_yaml_text

from .demo import CHECK, CROSS, matrix, print_matrix
from .net import Lab

# Traffic no rule of the shipped policy expects, sent once per run: the draft leaves it out
# (MIN_FLOWS), and once enforced it is denied.
STRAY = [("hr1", "db1", "tcp", 5432), ("printer1", "web1", "tcp", 80), ("web2", "hrapp1", "tcp", 443)]
ENFORCED_FIRST = ("db", "app")  # the groups (by role) enforced first
# A service is ruled once seen this often between two groups: more than the matrix's one-off
# pings to a group of two hosts, fewer than the traffic rounds.
MIN_FLOWS = 3


def monitor_everything(shipped: Policy) -> str:
    """The starting policy: the shipped groups, no rule, every group in monitor mode."""
    lines = ["# The rollout lab's starting point: everything forwarded and recorded.", "mode: monitor", "groups:"]
    for name, selector in shipped.groups.items():
        pairs = ", ".join(f"{key}: {value}" for key, value in sorted(selector.pairs))
        lines.append(f"  {name}: {{{pairs}}}")
    return "\n".join(lines + ["rules: []", ""])


def expected_checks(lab: Lab, shipped: Policy) -> list[tuple]:
    """One (src, dst, proto, port) per host pair and service the shipped policy allows."""
    index = DecisionIndex(shipped)
    hosts = [h.name for h in lab.topology.hosts if h.name in lab.directory.by_name]
    checks = []
    for src in hosts:
        for dst in hosts:
            if src == dst:
                continue
            a, b = lab.directory.by_name[src], lab.directory.by_name[dst]
            for rule in index.peers(a.labels, b.labels):
                if rule.proto in ("icmp", "any"):
                    checks.append((src, dst, "icmp", None))
                else:
                    checks += [(src, dst, rule.proto, low) for low, _ in rule.ports or ((80, 80),)]
    return list(dict.fromkeys(checks))


def run_traffic(lab: Lab, checks: list, rounds: int, gap: float) -> None:
    for number in range(rounds):
        seen = lab.outcomes(checks)
        print(f"  round {number + 1}/{rounds}: {seen.count('allow')} of {len(checks)} connections answered", flush=True)
        if number + 1 < rounds:
            time.sleep(gap)


def with_modes(draft: str, mode: str, modes: dict[str, str]) -> str:
    """The draft with its top-level `mode:` line replaced by `mode` and `modes`."""
    lines = draft.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("mode:"))
    extra = [f"modes: {{{', '.join(f'{g}: {m}' for g, m in modes.items())}}}"] if modes else []
    return "\n".join(lines[:at] + [f"mode: {mode}"] + extra + lines[at + 1 :]) + "\n"


def groups_for_roles(draft: str, roles: tuple) -> list[str]:
    """The draft's group names whose selector is exactly {role: ROLE}, for each role."""
    data = load_yaml_text(draft, "draft")
    found = []
    for role in roles:
        for name, selector in (data.get("groups") or {}).items():
            if dict(selector) == {"role": role}:
                found.append(name)
                break
    return found


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def show(result) -> None:
    print((result.stdout or result.stderr).rstrip(), flush=True)


def rollout(lab: Lab, policy_path: str, shipped: Policy, rounds: int = 5, gap: float = 11.0) -> int:
    """The journey, on a lab whose controller runs `policy_path` (at first monitor_everything());
    `shipped` is the policy whose services the hosts use. Returns the checks not as expected."""
    wrong = 0

    def check_matrix(title: str) -> None:
        nonlocal wrong
        rows, bad = matrix(lab, load_policy(policy_path))
        print_matrix(rows)
        print(f"{title}: {len(rows)} pairs, {len(rows) - bad} as expected {CHECK if not bad else CROSS}", flush=True)
        wrong += bad

    step("1. every group in monitor mode: everything is forwarded and recorded")
    check_matrix("monitor")
    expected = expected_checks(lab, shipped)
    step(f"2. traffic: {len(expected)} expected services, {len(STRAY)} stray connections, {rounds} rounds")
    run_traffic(lab, expected, rounds, gap)
    run_traffic(lab, STRAY, 1, 0)

    step("3. segctl map --by role")
    result = lab.controller.cli("map", "--by", "role")
    show(result)
    wrong += result.returncode != 0

    step(f"4. segctl suggest --by role --min-flows {MIN_FLOWS} > draft.yaml")
    result = lab.controller.cli("suggest", "--by", "role", "--min-flows", str(MIN_FLOWS))
    draft = result.stdout
    wrong += result.returncode != 0
    draft_path = os.path.join(lab.state_dir, "draft.yaml")
    with open(draft_path, "w", encoding="utf-8") as handle:
        handle.write(draft)
    print(draft.rstrip(), flush=True)

    step("5. segctl replay --policy draft.yaml (exit 3: the stray flows would be denied)")
    result = lab.controller.cli("replay", "--policy", draft_path)
    show(result)
    wrong += result.returncode != 3

    enforced = groups_for_roles(draft, ENFORCED_FIRST)
    step(f"6. the draft, enforced for {', '.join(enforced)} only; every other group still monitored")
    _apply(lab, policy_path, with_modes(draft, "monitor", {name: "enforce" for name in enforced}))
    check_matrix("two groups enforced")

    step("7. the draft, enforced everywhere")
    _apply(lab, policy_path, with_modes(draft, "enforce", {}))
    check_matrix("enforced")
    step("8. the blast radius now: segctl reach jump1 --hops 2 (where an intruder on the jump host could go)")
    result = lab.controller.cli("reach", "jump1", "--hops", "2")
    show(result)
    wrong += result.returncode != 0
    step("9. the traffic mix again: expected services pass, stray traffic is denied at its destination")
    seen = lab.outcomes(expected + STRAY)
    bad = [c for c, s in zip(expected, seen) if s != "allow"] + [
        c for c, s in zip(STRAY, seen[len(expected) :]) if s != "deny"
    ]
    print(
        f"  {len(expected)} expected: {seen[: len(expected)].count('allow')} allowed; "
        f"{len(STRAY)} stray: {seen[len(expected) :].count('deny')} denied {CHECK if not bad else CROSS}"
    )
    for check in bad:
        print(f"  not as expected: {check}")
    return wrong + len(bad)


def _apply(lab: Lab, policy_path: str, text: str) -> None:
    with open(policy_path, "w", encoding="utf-8") as handle:
        handle.write(text)
    result = lab.controller.cli("reload")
    show(result)
    if result.returncode != 0:
        raise RuntimeError(f"reload refused:\n{result.stdout}{result.stderr}")
