"""The segmentation policy: label-selector groups and allow rules, loaded from YAML."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .directory import label_value
from .errors import ConfigError, ConfigProblem, Problems
from .protection import Protection
from .yamlsrc import LDict, LList, load_yaml_file

PROTOCOLS = ("tcp", "udp", "icmp", "any")
MODES = ("enforce", "monitor")
_TOP_KEYS = {"mode", "groups", "rules", "protection"}
_PROTECTION_KEYS = {
    "packet_in_rate",
    "packet_in_burst",
    "denied_rate",
    "denied_burst",
    "flood_hold",
    "scan_quarantine",
    "meters",
}
_RULE_KEYS = {"name", "from", "to", "proto", "ports", "icmp_types", "description"}
ICMP_TYPES = {
    "echo-reply": 0,
    "destination-unreachable": 3,
    "source-quench": 4,
    "redirect": 5,
    "echo-request": 8,
    "router-advertisement": 9,
    "router-solicitation": 10,
    "time-exceeded": 11,
    "parameter-problem": 12,
    "timestamp-request": 13,
    "timestamp-reply": 14,
    "information-request": 15,
    "information-reply": 16,
    "address-mask-request": 17,
    "address-mask-reply": 18,
}
# What an icmp (or any) rule allows when it names no types: echo, whose replies come back on
# the connection's entries. Errors about allowed connections pass without a rule; redirects,
# router advertisements and timestamps only where a rule names them.
DEFAULT_ICMP_TYPES = ((8, 8),)
_RANGE_RE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$")


@dataclass(frozen=True)
class Selector:
    """Matches hosts whose labels contain every pair; the empty selector matches any host."""

    pairs: frozenset

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.pairs)

    def __str__(self) -> str:
        if not self.pairs:
            return "any"
        return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(self.pairs)) + "}"


ANY = Selector(frozenset())


@dataclass(frozen=True)
class Rule:
    """One allow rule. `ports` is None for every port, else inclusive (low, high) ranges."""

    name: str
    index: int
    src: Selector
    dst: Selector
    src_text: str
    dst_text: str
    proto: str
    ports: tuple | None
    file: str
    line: int
    icmp_types: tuple | None = None  # inclusive (low, high) ranges; None: DEFAULT_ICMP_TYPES

    def service_ranges(self, proto: str) -> tuple | None:
        """The destination ports (tcp, udp) or ICMP types this rule allows for `proto`; None
        for every one of them. Only call it for a protocol the rule covers."""
        if proto == "icmp":
            return self.icmp_types or DEFAULT_ICMP_TYPES
        return self.ports if self.proto != "any" else None

    def allows_port(self, proto: str, port: int | None) -> bool:
        """`port` is the destination port for tcp and udp, the type for icmp."""
        if self.proto != "any" and self.proto != proto:
            return False
        ranges = self.service_ranges(proto) if proto in ("tcp", "udp", "icmp") else None
        if ranges is None:
            return True
        return port is not None and any(low <= port <= high for low, high in ranges)

    def matches(
        self, src_labels: Mapping[str, str], dst_labels: Mapping[str, str], proto: str, port: int | None
    ) -> bool:
        """Rule-by-rule evaluation: the reference the compiled index is tested against."""
        return self.src.matches(src_labels) and self.dst.matches(dst_labels) and self.allows_port(proto, port)

    def describe(self) -> str:
        ports = ""
        if self.ports is not None:
            ports = " ports " + ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ports)
        if self.icmp_types is not None:
            ports = " types " + ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.icmp_types)
        return f"{self.name}: {self.src_text} -> {self.dst_text} {self.proto}{ports} ({self.file}:{self.line})"


@dataclass(frozen=True)
class Policy:
    mode: str
    groups: Mapping[str, Selector]
    rules: tuple
    sources: tuple
    protection: Protection = Protection()

    def naive_decide(self, src_labels, dst_labels, proto: str, port: int | None) -> Rule | None:
        for rule in self.rules:
            if rule.matches(src_labels, dst_labels, proto, port):
                return rule
        return None


def _parse_selector_map(value: LDict, line: int, what: str, problems: Problems) -> Selector | None:
    pairs = []
    for key, item in value.items():
        if not isinstance(key, str) or item is None or isinstance(item, (dict, list)):
            problems.add(value.line_of(key), f"{what}: label {key!r} must map to a plain value")
            return None
        pairs.append((key, label_value(item)))
    if not pairs:
        problems.add(line, f"{what}: an empty selector would match every host; write 'any'")
        return None
    return Selector(frozenset(pairs))


def merge_ranges(ranges) -> list[tuple[int, int]]:
    """Sorted, non-overlapping, non-adjacent inclusive ranges covering the same ports."""
    merged: list[list[int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return [(low, high) for low, high in merged]


def _parse_icmp_types(value: Any, line: int, rule: str, problems: Problems) -> tuple | None:
    items = value if isinstance(value, list) else [value]
    if not items:
        problems.add(line, f"rule {rule}: 'icmp_types' is empty; omit it to mean echo-request")
        return None
    types = []
    for position, item in enumerate(items):
        item_line = value.line_of(position) if isinstance(value, LList) else line
        number = ICMP_TYPES.get(item) if isinstance(item, str) else item
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 255:
            names = ", ".join(ICMP_TYPES)
            problems.add(item_line, f"rule {rule}: ICMP type {item!r} is not 0-255 or one of {names}")
            continue
        types.append((number, number))
    return tuple(merge_ranges(types)) if types else None


def _parse_ports(value: Any, line: int, rule: str, problems: Problems) -> tuple | None:
    items = value if isinstance(value, list) else [value]
    if not items:
        problems.add(line, f"rule {rule}: 'ports' is empty; omit it to mean every port")
        return None
    ranges = []
    for position, item in enumerate(items):
        item_line = value.line_of(position) if isinstance(value, LList) else line
        if isinstance(item, bool):
            low = high = -1
        elif isinstance(item, int):
            low = high = item
        elif isinstance(item, str) and item.strip().isdigit():
            low = high = int(item)
        elif isinstance(item, str) and _RANGE_RE.match(item):
            match = _RANGE_RE.match(item)
            low, high = int(match.group(1)), int(match.group(2))
        else:
            problems.add(item_line, f'rule {rule}: port {item!r} is not a number or a range like "8000-8080"')
            continue
        if not (1 <= low <= 65535 and 1 <= high <= 65535):
            problems.add(item_line, f"rule {rule}: port {item!r} is out of range 1-65535")
            continue
        if low > high:
            problems.add(item_line, f"rule {rule}: port range {item!r} runs backwards")
            continue
        ranges.append((low, high))
    return tuple(merge_ranges(ranges)) if ranges else None


def _number(value: Any, low: float, high: float) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and low <= value <= high


def _parse_protection(value: Any, line: int, problems: Problems) -> Protection:
    """`protection: {packet_in_rate, packet_in_burst, denied_rate, denied_burst, flood_hold, meters,
    scan_quarantine: {denied, seconds}}`."""
    default = Protection()
    if not isinstance(value, LDict):
        problems.add(line, "protection must be a mapping")
        return default
    fields = {}
    for key in value:
        if key not in _PROTECTION_KEYS:
            allowed = ", ".join(sorted(_PROTECTION_KEYS))
            problems.add(value.line_of(key), f"protection: unknown key {key!r} (allowed: {allowed})")
    checks = (
        ("packet_in_rate", 1, 1_000_000, "packet-ins per second per port"),
        ("packet_in_burst", 1, 1_000_000, "packet-ins"),
        ("denied_rate", 0.1, 1_000_000, "denials per second per port"),
        ("denied_burst", 1, 1_000_000, "denials"),
        ("flood_hold", 1, 3600, "seconds"),
    )
    for key, low, high, unit in checks:
        if key in value:
            if _number(value[key], low, high) and (key.endswith("_rate") or isinstance(value[key], int)):
                fields[key] = value[key]
            else:
                problems.add(value.line_of(key), f"protection: {key} must be {low}-{high} {unit}")
    if "meters" in value:
        if isinstance(value["meters"], bool):
            fields["meters"] = value["meters"]
        else:
            problems.add(value.line_of("meters"), "protection: meters must be true or false")
    scan = value.get("scan_quarantine")
    if scan is not None:
        where = value.line_of("scan_quarantine")
        if not isinstance(scan, LDict) or set(scan) - {"denied", "seconds"}:
            problems.add(where, "protection: scan_quarantine is {denied: N, seconds: T}")
        elif not (isinstance(scan.get("denied"), int) and _number(scan.get("denied"), 1, 1_000_000)):
            problems.add(where, "protection: scan_quarantine needs denied: a count of 1 or more")
        elif not _number(scan.get("seconds", default.scan_seconds), 0.1, 86400):
            problems.add(where, "protection: scan_quarantine seconds must be 0.1-86400")
        else:
            fields["scan_denied"] = scan["denied"]
            fields["scan_seconds"] = float(scan.get("seconds", default.scan_seconds))
    return Protection(**fields)


class _PolicyBuilder:
    def __init__(self):
        self.mode: str | None = None
        self.mode_origin = ""
        self.groups: dict[str, Selector] = {}
        self.group_origin: dict[str, str] = {}
        self.raw_rules: list = []
        self.file_problems: list[Problems] = []
        self.protection: Protection | None = None
        self.protection_origin = ""

    def add_file(self, data: Any, file: str) -> None:
        problems = Problems(file)
        self.file_problems.append(problems)
        if data is None:
            data = LDict()
            data.line, data.lines = 1, {}
        if not isinstance(data, LDict):
            problems.add(getattr(data, "line", 1), "expected a mapping with 'groups' and 'rules'")
            return
        for key in data:
            if key not in _TOP_KEYS:
                problems.add(data.line_of(key), f"unknown key {key!r} (allowed: {', '.join(sorted(_TOP_KEYS))})")
        if "mode" in data:
            mode = data["mode"]
            if mode not in MODES:
                problems.add(data.line_of("mode"), f"mode {mode!r} is not one of {', '.join(MODES)}")
            elif self.mode is not None and self.mode != mode:
                problems.add(
                    data.line_of("mode"),
                    f"mode {mode} contradicts mode {self.mode} set at {self.mode_origin}",
                )
            else:
                self.mode, self.mode_origin = mode, f"{file}:{data.line_of('mode')}"
        groups = data.get("groups") or LDict()
        if not isinstance(groups, LDict):
            problems.add(data.line_of("groups"), "'groups' must be a mapping of name: {label: value}")
            groups = {}
        for name, value in groups.items():
            line = groups.line_of(name)
            if not isinstance(name, str) or not _NAME_RE.match(name) or name == "any":
                problems.add(line, f"group name {name!r} is not allowed")
                continue
            if name in self.groups:
                problems.add(line, f"group {name} is already defined at {self.group_origin[name]}")
                continue
            if not isinstance(value, LDict):
                problems.add(line, f"group {name}: expected a label selector like {{role: web}}")
                continue
            selector = _parse_selector_map(value, line, f"group {name}", problems)
            if selector is not None:
                self.groups[name] = selector
                self.group_origin[name] = f"{file}:{line}"
        rules = data.get("rules") or LList()
        if not isinstance(rules, LList):
            problems.add(data.line_of("rules"), "'rules' must be a list")
            rules = []
        for position, raw in enumerate(rules):
            self.raw_rules.append((raw, rules.line_of(position), file, problems))
        if "protection" in data:
            line = data.line_of("protection")
            if self.protection is not None:
                problems.add(line, f"protection is already set at {self.protection_origin}")
            else:
                self.protection = _parse_protection(data["protection"], line, problems)
                self.protection_origin = f"{file}:{line}"

    def _selector(self, value: Any, line: int, what: str, problems: Problems):
        if value == "any":
            return ANY, "any"
        if isinstance(value, str):
            if value in self.groups:
                return self.groups[value], value
            problems.add(line, f"{what}: unknown group {value!r}")
            return None, ""
        if isinstance(value, LDict):
            selector = _parse_selector_map(value, line, what, problems)
            return selector, str(selector) if selector else ""
        problems.add(line, f"{what}: expected a group name, a selector {{key: value}} or 'any'")
        return None, ""

    def build(self) -> Policy:
        rules: list[Rule] = []
        names: dict[str, str] = {}
        sources = []
        for raw, line, file, problems in self.raw_rules:
            before = len(problems.items)
            if file not in sources:
                sources.append(file)
            if not isinstance(raw, LDict):
                problems.add(line, "a rule must be a mapping with name, from, to, proto")
                continue
            name = raw.get("name")
            label = name if isinstance(name, str) else f"at line {line}"
            for key in raw:
                if key not in _RULE_KEYS:
                    problems.add(
                        raw.line_of(key),
                        f"rule {label}: unknown key {key!r} (allowed: {', '.join(sorted(_RULE_KEYS))})",
                    )
            if not isinstance(name, str) or not _NAME_RE.match(name):
                problems.add(
                    raw.line_of("name"),
                    f"rule {label}: 'name' is required (letters, digits, '.', '_', ':' or '-')",
                )
            elif name in names:
                problems.add(raw.line_of("name"), f"duplicate rule name {name!r} (first at {names[name]})")
            else:
                names[name] = f"{file}:{raw.line_of('name')}"
            for key in ("from", "to"):
                if key not in raw:
                    problems.add(line, f"rule {label}: {key!r} is required")
            src, src_text = (
                self._selector(raw.get("from"), raw.line_of("from"), f"rule {label} from", problems)
                if "from" in raw
                else (None, "")
            )
            dst, dst_text = (
                self._selector(raw.get("to"), raw.line_of("to"), f"rule {label} to", problems)
                if "to" in raw
                else (None, "")
            )
            proto = raw.get("proto", "any")
            if proto not in PROTOCOLS:
                problems.add(
                    raw.line_of("proto"),
                    f"rule {label}: proto {proto!r} is not one of {', '.join(PROTOCOLS)}",
                )
            ports = None
            if "ports" in raw and raw["ports"] is None:
                problems.add(raw.line_of("ports"), f"rule {label}: 'ports' is empty; omit it to mean every port")
            elif "ports" in raw:
                if proto in ("icmp", "any"):
                    problems.add(raw.line_of("ports"), f"rule {label}: ports only apply to tcp or udp, not {proto}")
                else:
                    # None: each bad port is a problem already; the rule's other problems still count
                    ports = _parse_ports(raw["ports"], raw.line_of("ports"), label, problems)
            icmp_types = None
            if "icmp_types" in raw:
                where = raw.line_of("icmp_types")
                if proto != "icmp":
                    problems.add(where, f"rule {label}: icmp_types only apply to proto icmp, not {proto}")
                else:
                    icmp_types = _parse_icmp_types(raw["icmp_types"], where, label, problems)
            if len(problems.items) != before or src is None or dst is None:
                continue
            rules.append(
                Rule(
                    name=name,
                    index=len(rules),
                    src=src,
                    dst=dst,
                    src_text=src_text,
                    dst_text=dst_text,
                    proto=proto,
                    ports=ports,
                    file=file,
                    line=line,
                    icmp_types=icmp_types,
                )
            )
        problems = [problem for file in self.file_problems for problem in file.items]
        if problems:
            raise ConfigError(problems)
        return Policy(
            mode=self.mode or "enforce",
            groups=dict(self.groups),
            rules=tuple(rules),
            sources=tuple(sources),
            protection=self.protection or Protection(),
        )


def policy_files(path: str) -> list[str]:
    """The YAML files a policy PATH names: the file itself, or a folder's *.yaml/*.yml, sorted."""
    if os.path.isdir(path):
        files = sorted(
            os.path.join(path, name)
            for name in os.listdir(path)
            if name.endswith((".yaml", ".yml")) and not name.startswith(".")
        )
        if not files:
            raise ConfigError([ConfigProblem(path, 1, "folder holds no .yaml or .yml policy file")])
        return files
    return [path]


def parse_policy(documents: list) -> Policy:
    """Build a Policy from (parsed YAML, file name) pairs, in order; ConfigError lists every problem."""
    builder = _PolicyBuilder()
    for data, file in documents:
        builder.add_file(data, file)
    return builder.build()


def load_policy(path: str) -> Policy:
    """Load and validate a policy file or folder of policy files."""
    documents = []
    problems: list[ConfigProblem] = []
    for file in policy_files(path):
        try:
            documents.append((load_yaml_file(file), file))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return parse_policy(documents)
