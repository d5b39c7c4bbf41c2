"""The benchmark's world: a directory of N hosts spread over S switches, a policy of R rules,
and for every switch the flows its hosts open, each with the verdict the policy gives it.

Deterministic (seeded), so every run and every controller sees the same flows."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import yaml

from segctl.core.decision import DecisionIndex
from segctl.core.directory import Directory, Host
from segctl.core.policy import parse_policy
from segctl.core.yamlsrc import load_yaml_text

ROLES = 40
DENIED_PORT = 9  # no rule opens it


@dataclass(frozen=True)
class BenchHost:
    name: str
    mac: str
    ip: str
    switch: int
    port: int
    role: str


@dataclass(frozen=True)
class Flow:
    src: BenchHost
    dst: BenchHost
    dst_port: int
    allowed: bool


def make_hosts(count: int, switches: int) -> list[BenchHost]:
    hosts = []
    for i in range(count):
        switch = i % switches + 1
        port = i // switches + 1
        hosts.append(
            BenchHost(
                name=f"h{i:05d}",
                mac=f"02:00:00:{(i >> 16) & 0xFF:02x}:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}",
                ip=f"10.{(i >> 16) & 0xFF}.{(i >> 8) & 0xFF}.{i & 0xFF}",
                switch=switch,
                port=port,
                role=f"r{(i // switches) % ROLES}",  # every switch gets every role
            )
        )
    return hosts


def policy_text(rules: int) -> str:
    """R rules, each from one role to another on its own TCP port."""
    lines = ["mode: enforce", "rules:"]
    for k in range(rules):
        src, dst = k % ROLES, (k * 7 + 3) % ROLES
        lines.append(
            f"  - {{name: rule{k:05d}, from: {{role: r{src}}}, to: {{role: r{dst}}}, proto: tcp, ports: [{1000 + k}]}}"
        )
    return "\n".join(lines) + "\n"


def directory_text(hosts: list[BenchHost]) -> str:
    data = {"hosts": {h.name: {"mac": h.mac, "ip": h.ip, "labels": {"role": h.role}} for h in hosts}}
    return yaml.safe_dump(data, default_flow_style=None, sort_keys=False)


class Workload:
    def __init__(self, hosts: int = 1000, switches: int = 16, rules: int = 1000, seed: int = 7):
        self.hosts = make_hosts(hosts, switches)
        self.switches = switches
        self.ports_per_switch = max(h.port for h in self.hosts)
        self.policy_yaml = policy_text(rules)
        self.directory_yaml = directory_text(self.hosts)
        policy = parse_policy([(load_yaml_text(self.policy_yaml, "policy.yaml"), "policy.yaml")])
        self.index = DecisionIndex(policy)
        self.directory = Directory(Host(h.name, h.mac, h.ip, {"role": h.role}) for h in self.hosts)
        self.rng = random.Random(seed)

    def write(self, folder: str) -> tuple[str, str]:
        os.makedirs(folder, exist_ok=True)
        directory, policy = os.path.join(folder, "directory.yaml"), os.path.join(folder, "policy.yaml")
        with open(directory, "w") as handle:
            handle.write(self.directory_yaml)
        with open(policy, "w") as handle:
            handle.write(self.policy_yaml)
        return directory, policy

    def allowed_port(self, src: BenchHost, dst: BenchHost) -> int | None:
        rules = [r for r in self.index.peers({"role": src.role}, {"role": dst.role}) if r.proto == "tcp"]
        return rules[0].ports[0][0] if rules else None

    def flows(self, switch: int, allowed_share: float, count: int = 256) -> list[Flow]:
        """`count` flows between hosts of one switch, `allowed_share` of them allowed."""
        local = [h for h in self.hosts if h.switch == switch]
        allowed, denied = [], []
        for src in local:
            for dst in local:
                if src is dst:
                    continue
                port = self.allowed_port(src, dst)
                if port is not None:
                    allowed.append(Flow(src, dst, port, True))
                denied.append(Flow(src, dst, DENIED_PORT, False))
        if not allowed and allowed_share > 0:
            raise ValueError(f"switch {switch} has no allowed pair; use more hosts or rules")
        chosen = []
        for i in range(count):
            pool = allowed if (i + 0.5) / count <= allowed_share else denied
            chosen.append(self.rng.choice(pool))
        self.rng.shuffle(chosen)
        return chosen
