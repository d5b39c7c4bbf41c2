"""The lab demo: every ordered pair of hosts, expected (from the policy) vs observed (real
traffic), then a quarantine and a release through the `segctl` command line."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

from segctl.core.decision import DecisionIndex
from segctl.core.policy import Policy

from .net import Lab

CHECK, CROSS = "\u2713", "\u2717"


def service_for(index: DecisionIndex, directory, src: str, dst: str) -> tuple[str, int | None, bool]:
    """The service to try from src to dst and whether the policy allows it: the first rule
    from src to dst if any (expected allow); else the service of a rule the other way round,
    which must not open this direction (expected deny); else ping (expected deny)."""
    a, b = directory.by_name.get(src), directory.by_name.get(dst)
    if a is None or b is None:
        return "icmp", None, False
    for rules, allowed in ((index.peers(a.labels, b.labels), True), (index.peers(b.labels, a.labels), False)):
        for rule in rules:
            if rule.proto in ("any", "icmp"):
                return "icmp", None, allowed
            port = rule.ports[0][0] if rule.ports else (80 if rule.proto == "tcp" else 5000)
            return rule.proto, port, allowed
    return "icmp", None, False


def matrix(lab: Lab, policy: Policy | None = None) -> tuple[list, int]:
    """Every ordered pair of the lab's hosts, expected under `policy` (the lab's by default,
    modes included) against observed."""
    index = DecisionIndex(policy or lab.policy)
    names = [h.name for h in lab.topology.hosts]
    plan = []
    for src in names:
        for dst in names:
            if src != dst:
                proto, port, _ = service_for(index, lab.directory, src, dst)
                a, b = lab.directory.by_name.get(src), lab.directory.by_name.get(dst)
                # (forwarded: a rule allows it, or its destination is monitored)
                expected = bool(
                    a and b and index.outcome(a.labels, b.labels, proto, 8 if port is None else port).forwarded
                )
                plan.append((src, dst, proto, port, expected))
    observed = lab.outcomes([(s, d, p, n) for s, d, p, n, _ in plan])
    rows, wrong = [], 0
    for (src, dst, proto, port, expected), seen in zip(plan, observed):
        want = "allow" if expected else "deny"
        wrong += seen != want
        rows.append((src, dst, proto if port is None else f"{proto}/{port}", want, seen, _mark(seen, want)))
    return rows, wrong


def _mark(seen: str, want: str) -> str:
    return CHECK if seen == want else CROSS


def print_matrix(rows: list) -> None:
    header = ("from", "to", "service", "expected", "observed", "")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(6)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*header).rstrip())
    for row in rows:
        print(line.format(*row).rstrip())


def quarantine_demo(lab: Lab, victim: str = "web1") -> int:
    """Quarantine a host through the CLI, show it cut off while others work, release it."""
    index = DecisionIndex(lab.policy)
    names = [h.name for h in lab.topology.hosts]
    outbound = next(
        ((victim, d) for d in names if d != victim and service_for(index, lab.directory, victim, d)[2]), None
    )
    inbound = next(
        ((s, victim) for s in names if s != victim and service_for(index, lab.directory, s, victim)[2]), None
    )
    bystander = next(
        (
            (s, d)
            for s in names
            for d in names
            if victim not in (s, d) and s != d and service_for(index, lab.directory, s, d)[2]
        ),
        None,
    )
    checks = [pair for pair in (outbound, inbound, bystander) if pair]
    plan = [(s, d, *service_for(index, lab.directory, s, d)[:2]) for s, d in checks]
    wrong = 0

    def show(title: str, expected: list[bool]) -> None:
        nonlocal wrong
        seen = lab.outcomes(plan)
        print(title)
        for (s, d, proto, port), allowed, got in zip(plan, expected, seen):
            service = proto if port is None else f"{proto}/{port}"
            want = "allow" if allowed else "deny"
            wrong += got != want
            print(f"  {s:<9} {d:<9} {service:<9} expected {want:<5}  observed {got:<5}  {_mark(got, want)}")

    print(f'$ segctl quarantine {victim} --reason "demo: suspected compromise"')
    result = lab.controller.cli("quarantine", victim, "--reason", "demo: suspected compromise")
    print(result.stdout.rstrip() or result.stderr.rstrip())
    wrong += result.returncode != 0
    show(f"while {victim} is quarantined:", [pair is bystander for pair in checks])
    print(f"$ segctl release {victim}")
    result = lab.controller.cli("release", victim)
    print(result.stdout.rstrip() or result.stderr.rstrip())
    wrong += result.returncode != 0
    show("after the release:", [True] * len(checks))
    return wrong


def ldap_removal_demo(lab: Lab, slapd, name: str = "printer1") -> int:
    """Delete a device from LDAP, reload, and show that what it was allowed is gone."""
    index = DecisionIndex(lab.policy)
    names = [h.name for h in lab.topology.hosts]
    pair = next((s, name) for s in names if s != name and service_for(index, lab.directory, s, name)[2])
    plan = [(pair[0], name, *service_for(index, lab.directory, pair[0], name)[:2])]
    before = lab.outcomes(plan)[0]
    print(f"$ ldapdelete cn={name},ou=devices,dc=example,dc=org   # the device is retired in LDAP")
    with slapd.admin() as admin:
        admin.delete(f"cn={name},ou=devices,dc=example,dc=org")
    print("$ segctl reload   # or wait: segctl re-reads LDAP every ttl/2")
    result = lab.controller.cli("reload")
    print(result.stdout.rstrip() or result.stderr.rstrip())
    after = lab.outcomes(plan)[0]
    s, d, proto, port = plan[0]
    ok = (before, after) == ("allow", "deny")
    print(f"  {s} -> {d} {proto}/{port}: before {before}, after {after}  {CHECK if ok else CROSS}")
    return 0 if ok else 1


def start_lab_ldap(here: str):
    """The lab's OpenLDAP server on 127.0.0.1:3890, seeded from policies/ldap/directory.ldif."""
    import tempfile

    from .slapd import Slapd

    folder = tempfile.mkdtemp(prefix="segctl-slapd-")
    ldif = os.path.join(here, "policies", "ldap", "directory.ldif")
    slapd = Slapd(folder, 3890, [ldif], reader="cn=segctl,dc=example,dc=org")
    slapd.start()
    print(f"LDAP: slapd on {slapd.url}, seeded from {os.path.relpath(ldif, here)}", flush=True)
    return slapd


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="segctl Mininet lab")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--topology", default=os.path.join(here, "topologies", "leaf-spine.yaml"))
    parser.add_argument("--directory", default=os.path.join(here, "policies", "directory.yaml"))
    parser.add_argument("--policy", default=os.path.join(here, "policies", "policy.yaml"))
    parser.add_argument("--of-port", type=int, default=6653)
    parser.add_argument("--cli", action="store_true", help="leave the Mininet CLI open")
    parser.add_argument(
        "--ldap", action="store_true", help="authenticate hosts against a lab OpenLDAP server (policies/ldap/)"
    )
    parser.add_argument(
        "--scenario",
        choices=("demo", "rollout"),
        default="demo",
        help="demo: access matrix, quarantine, release; rollout: from monitor everything to enforce (lab/rollout.py)",
    )
    args = parser.parse_args(argv)
    if args.scenario == "rollout":
        return run_rollout(args)

    started = time.monotonic()
    slapd = None
    addressing = None
    if args.ldap:
        slapd = start_lab_ldap(here)
        addressing = args.directory
        args.directory = os.path.join(here, "policies", "ldap", "ldap.yaml")
    try:
        return run_lab(args, started, slapd, addressing)
    finally:
        if slapd is not None:
            slapd.stop()
            shutil.rmtree(slapd.folder, ignore_errors=True)


def run_rollout(args) -> int:
    """`make lab SCENARIO=rollout`: the lab's controller starts from a policy with the shipped
    groups, no rule and monitor mode, in a folder of its own that the scenario rewrites."""
    import tempfile

    from segctl.core.policy import load_policy

    from .rollout import monitor_everything, rollout

    shipped = load_policy(args.policy)
    folder = tempfile.mkdtemp(prefix="segctl-rollout-")
    policy_path = os.path.join(folder, "policy.yaml")
    with open(policy_path, "w", encoding="utf-8") as handle:
        handle.write(monitor_everything(shipped))
    lab = Lab(args.topology, args.directory, policy_path, of_port=args.of_port)
    print(f"segctl lab, rollout: topology {lab.topology.name}; the controller's policy is {policy_path}", flush=True)
    try:
        lab.start()
        wrong = rollout(lab, policy_path, shipped)
        verdict = f"every check as expected {CHECK}" if not wrong else f"{wrong} check(s) not as expected {CROSS}"
        print(f"\nresult: {verdict}", flush=True)
        if args.cli:
            from mininet.cli import CLI

            CLI(lab.net)
    finally:
        lab.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if wrong else 0


def run_lab(args, started: float, slapd, addressing: str | None) -> int:
    lab = Lab(args.topology, args.directory, args.policy, of_port=args.of_port, addressing=addressing)
    topo = lab.topology
    print(
        f"segctl lab: topology {topo.name} ({len(topo.switches)} switches, {len(topo.links)} "
        f"links, {len(topo.hosts)} hosts); policy {len(lab.policy.rules)} rules, mode "
        f"{lab.policy.mode}; directory {lab.directory.source}",
        flush=True,
    )
    try:
        lab.start()
        print(
            f"fabric ready: every switch connected, every link discovered ({time.monotonic() - started:.1f}s)\n",
            flush=True,
        )
        rows, wrong = matrix(lab)
        print_matrix(rows)
        print(
            f"\n{len(rows)} pairs: {len(rows) - wrong} as expected, {wrong} not {CHECK if not wrong else CROSS}\n",
            flush=True,
        )
        wrong += quarantine_demo(lab)
        if slapd is not None:
            print()
            wrong += ldap_removal_demo(lab, slapd)
        verdict = f"every check as expected {CHECK}" if not wrong else f"{wrong} check(s) not as expected {CROSS}"
        print(f"\nresult: {verdict}", flush=True)
        if args.cli:
            from mininet.cli import CLI

            print(f"Mininet CLI: try `web1 nc -zv 10.0.0.21 8080`; events in {lab.controller.events_path}")
            CLI(lab.net)
    finally:
        lab.stop()
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
