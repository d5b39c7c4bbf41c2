"""The segmentation policy: label-selector groups and allow rules, loaded from YAML."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ConfigError, ConfigProblem, Problems
from .protection import Protection
from .sections import DECIMAL_TEXT, PORT_MAX, Section, parse_port
from .yamlsrc import LDict, load_yaml_file

PROTOCOLS = ("tcp", "udp", "icmp", "any")
MODES = ("enforce", "monitor")
# How allowed connections are installed (segctl.core.pipeline): `reactive`, exact entries per
# connection, each set up by the controller; `stateful`, entries per allowed service that commit
# its connections to the switch's connection tracker, so that later connections of the service
# never reach the controller; `auto`, stateful on switches that track connections (Open vSwitch).
PIPELINES = ("reactive", "stateful", "auto")
# A rule's `scope`: `service` (the pipeline's choice) or `connection` (exact entries per
# connection even on the stateful pipeline: every connection of the service is seen and logged).
SCOPES = ("service", "connection")
_TOP_KEYS = {"mode", "modes", "pipeline", "groups", "rules", "protection"}
_PROTECTION_KEYS = {
    "packet_in_rate",
    "packet_in_burst",
    "denied_rate",
    "denied_burst",
    "flood_hold",
    "scan_quarantine",
    "meters",
}
_RULE_KEYS = {"name", "from", "to", "proto", "ports", "icmp_types", "scope", "description"}
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
_RANGE_RE = re.compile(r"^\s*([0-9]{1,12})\s*-\s*([0-9]{1,12})\s*$")  # ASCII digits, as DECIMAL_TEXT
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
    scope: str = "service"  # SCOPES

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
    # Destination group name -> its mode, overriding `mode` for connections to that group's
    # hosts; enforce wins where several groups of one host disagree (segctl.core.decision).
    modes: Mapping[str, str] = field(default_factory=dict)
    pipeline: str = "reactive"  # PIPELINES

    def group_modes(self) -> list[tuple[Selector, str]]:
        """(selector, mode) of every group with a mode of its own."""
        return [(self.groups[name], mode) for name, mode in self.modes.items()]

    def naive_decide(self, src_labels, dst_labels, proto: str, port: int | None) -> Rule | None:
        for rule in self.rules:
            if rule.matches(src_labels, dst_labels, proto, port):
                return rule
        return None


def _selector_of(section: Section) -> Selector | None:
    """A `{label: value}` selector (a group's, or a rule's own); None if it is wrong."""
    before = len(section.problems.items)
    pairs = section.labels(must="map to a plain value")
    if section.ok and not pairs and len(section.problems.items) == before:
        section.problem_at(section.line, "an empty selector would match every host; write 'any'")
    if len(section.problems.items) != before or not pairs:
        return None
    return Selector(frozenset(pairs.items()))


def merge_ranges(ranges) -> list[tuple[int, int]]:
    """Sorted, non-overlapping, non-adjacent inclusive ranges covering the same ports."""
    merged: list[list[int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return [(low, high) for low, high in merged]


def _icmp_types(rule: Section) -> tuple | None:
    types = []
    for line, item in rule.one_or_more("icmp_types"):
        number = ICMP_TYPES.get(item) if isinstance(item, str) else item
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 255:
            rule.problem_at(line, f"ICMP type {item!r} is not 0-255 or one of {', '.join(ICMP_TYPES)}")
            continue
        types.append((number, number))
    return tuple(merge_ranges(types)) if types else None


def _port_range(item: Any) -> tuple[int, int] | str:
    """(low, high) for a port or a range like "8000-8080"; else what is wrong with it."""
    if isinstance(item, str) and (match := _RANGE_RE.match(item)):
        low, high = (parse_port(int(text), PORT_MAX) for text in match.groups())
        if low is None or high is None:
            return "is out of range 1-65535"
        return (low, high) if low <= high else "runs backwards"
    if not (isinstance(item, int) or isinstance(item, str) and DECIMAL_TEXT.fullmatch(item)):
        return 'is not a number or a range like "8000-8080"'
    port = parse_port(item, PORT_MAX)
    return (port, port) if port is not None else "is out of range 1-65535"


def _ports(rule: Section) -> tuple | None:
    ranges = []
    for line, item in rule.one_or_more("ports"):
        found = _port_range(item)
        if isinstance(found, str):
            what = "port range" if found == "runs backwards" else "port"
            rule.problem_at(line, f"{what} {item!r} {found}")
        else:
            ranges.append(found)
    return tuple(merge_ranges(ranges)) if ranges else None


def _services(rule: Section, proto: Any) -> tuple[tuple | None, tuple | None]:
    """The rule's ports and ICMP types, each None for every one its protocol allows."""
    ports = icmp_types = None
    empty_ports = "'ports' is empty; omit it to mean every port"
    if "ports" in rule:
        if rule.get("ports") is None:
            rule.problem("ports", empty_ports)
        elif proto in ("icmp", "any"):
            rule.problem("ports", f"ports only apply to tcp or udp, not {proto}")
        elif rule.get("ports") == []:
            rule.problem("ports", empty_ports)
        else:
            ports = _ports(rule)
    if "icmp_types" in rule:
        if proto != "icmp":
            rule.problem("icmp_types", f"icmp_types only apply to proto icmp, not {proto}")
        elif rule.get("icmp_types") == []:
            rule.problem("icmp_types", "'icmp_types' is empty; omit it to mean echo-request")
        else:
            icmp_types = _icmp_types(rule)
    return ports, icmp_types


# (key, lowest, highest, unit, whole numbers only): a problem names the range and the unit,
# `packet_in_rate must be 1-1000000 packet-ins per second per port`.
_LIMITS = (
    ("packet_in_rate", 1, 1_000_000, "packet-ins per second per port", False),
    ("packet_in_burst", 1, 1_000_000, "packet-ins", True),
    ("denied_rate", 0.1, 1_000_000, "denials per second per port", False),
    ("denied_burst", 1, 1_000_000, "denials", True),
    ("flood_hold", 1, 3600, "seconds", True),
)
_SCAN_SHAPE = "scan_quarantine is {denied: N, seconds: T}"


def _protection(section: Section) -> Protection:
    """`protection: {packet_in_rate, packet_in_burst, denied_rate, denied_burst, flood_hold, meters,
    scan_quarantine: {denied, seconds}}`."""
    default = Protection()
    # Protection's fields are of several types, each checked by the Section read that gives it.
    fields: dict[str, Any] = {
        key: section.integer(key, int(low), int(high), unit=unit)
        if whole
        else section.number(key, low, high, unit=unit)
        for key, low, high, unit, whole in _LIMITS
    }
    fields["meters"] = section.flag("meters")
    if "scan_quarantine" in section:
        scan = section.child(
            "scan_quarantine",
            name="protection",
            allowed={"denied", "seconds"},
            expected=_SCAN_SHAPE,
            unknown=_SCAN_SHAPE,
        )
        denied = "scan_quarantine needs denied: a count of 1 or more"
        fields["scan_denied"] = scan.integer("denied", 1, 1_000_000, required=True, problem=denied)
        seconds = "scan_quarantine seconds must be 0.1-86400"
        fields["scan_seconds"] = scan.seconds("seconds", 0.1, 86400, default.scan_seconds, problem=seconds)
    return Protection(**{key: value for key, value in fields.items() if value is not None})


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
        self.modes: dict[str, str] = {}
        self.pipeline: str | None = None
        self.pipeline_origin = ""
        self.mode_origin_of: dict[str, str] = {}
        # (group name, line, problems): checked in build(), once every file's groups are known.
        self.mode_groups: list[tuple[str, int | None, Problems]] = []

    def add_file(self, data: Any, file: str) -> None:
        problems = Problems(file)
        self.file_problems.append(problems)
        if data is None:
            data = LDict()
            data.line, data.lines = 1, {}
        top = Section.read(
            data,
            problems,
            line=getattr(data, "line", 1),
            expected="expected a mapping with 'groups' and 'rules'",
            allowed=_TOP_KEYS,
        )
        mode = top.choice("mode", MODES, name_value=True)
        if mode is not None and self.mode not in (None, mode):
            top.problem("mode", f"mode {mode} contradicts mode {self.mode} set at {self.mode_origin}")
        elif mode is not None:
            self.mode, self.mode_origin = mode, f"{file}:{top.line_of('mode')}"
        pipeline = top.choice("pipeline", PIPELINES, name_value=True)
        if pipeline is not None and self.pipeline not in (None, pipeline):
            top.problem(
                "pipeline", f"pipeline {pipeline} contradicts pipeline {self.pipeline} set at {self.pipeline_origin}"
            )
        elif pipeline is not None:
            self.pipeline, self.pipeline_origin = pipeline, f"{file}:{top.line_of('pipeline')}"
        self._add_groups(top.child("groups", name="", expected="'groups' must be a mapping of name: {label: value}"))
        if "modes" in top:
            self._add_modes(top.child("modes", name="modes", expected="'modes' must be a mapping of group: mode"))
        for line, raw in top.items("rules"):
            self.raw_rules.append((raw, line, file, problems))
        if "protection" in top:
            if self.protection is not None:
                top.problem("protection", f"protection is already set at {self.protection_origin}")
            else:
                self.protection = _protection(top.child("protection", allowed=_PROTECTION_KEYS, quote_keys=False))
                self.protection_origin = f"{file}:{top.line_of('protection')}"

    def _add_groups(self, groups: Section) -> None:
        file = groups.problems.file
        for name in groups:
            line = groups.line_of(name)
            if not isinstance(name, str) or not _NAME_RE.match(name) or name == "any":
                groups.problem(name, f"group name {name!r} is not allowed")
            elif name in self.groups:
                groups.problem(name, f"group {name} is already defined at {self.group_origin[name]}")
            else:
                expected = f"group {name}: expected a label selector like {{role: web}}"
                selector = _selector_of(groups.child(name, name=f"group {name}", expected=expected))
                if selector is not None:
                    self.groups[name] = selector
                    self.group_origin[name] = f"{file}:{line}"

    def _add_modes(self, modes: Section) -> None:
        file = modes.problems.file
        for name in modes:
            line = modes.line_of(name)
            mode = modes.choice(name, MODES, name_value=True)
            if mode not in MODES:
                continue
            if not isinstance(name, str):
                modes.problem(name, f"{name!r} is not a group name")
            elif name in self.modes:
                modes.problem(name, f"the mode of group {name} is already set at {self.mode_origin_of[name]}")
            else:
                self.modes[name] = mode
                self.mode_origin_of[name] = f"{file}:{line}"
                self.mode_groups.append((name, line, modes.problems))

    def _selector(self, rule: Section, key: str) -> tuple[Selector | None, str]:
        """The selector of the rule's `from` or `to`, and how `explain` shows it."""
        value = rule.get(key)
        side = f"{rule.name} {key}"  # `rule web-db from: ...`
        if value == "any":
            return ANY, "any"
        if isinstance(value, LDict):
            selector = _selector_of(rule.child(key, name=side))
            return selector, str(selector) if selector else ""
        if isinstance(value, str) and value in self.groups:
            return self.groups[value], value
        if isinstance(value, str):
            rule.problems.add(rule.line_of(key), f"{side}: unknown group {value!r}")
        else:
            rule.problems.add(rule.line_of(key), f"{side}: expected a group name, a selector {{key: value}} or 'any'")
        return None, ""

    def _rule(self, raw: Any, line: int, file: str, problems: Problems, names: dict[str, str]) -> Rule | None:
        """The rule `raw` describes, numbered later; None, after saying why, if it is wrong."""
        before = len(problems.items)
        name = raw.get("name") if isinstance(raw, LDict) else None
        label = name if isinstance(name, str) else f"at line {line}"
        expected = "a rule must be a mapping with name, from, to, proto"
        rule = Section.read(raw, problems, line=line, expected=expected, name=f"rule {label}", allowed=_RULE_KEYS)
        if not rule.ok:
            return None
        if not isinstance(name, str) or not _NAME_RE.match(name):
            rule.problem("name", "'name' is required (letters, digits, '.', '_', ':' or '-')")
        elif name in names:
            problems.add(rule.line_of("name"), f"duplicate rule name {name!r} (first at {names[name]})")
        else:
            names[name] = f"{file}:{rule.line_of('name')}"
        rule.require("from", "to")
        src, src_text = self._selector(rule, "from") if "from" in rule else (None, "")
        dst, dst_text = self._selector(rule, "to") if "to" in rule else (None, "")
        rule.choice("proto", PROTOCOLS, name_value=True)
        proto = rule.get("proto", "any")
        ports, icmp_types = _services(rule, proto)
        scope = rule.choice("scope", SCOPES, "service", name_value=True)
        if len(problems.items) != before or not isinstance(name, str) or src is None or dst is None:
            return None
        return Rule(name, 0, src, dst, src_text, dst_text, proto, ports, file, line, icmp_types, scope)

    def build(self) -> Policy:
        rules: list[Rule] = []
        names: dict[str, str] = {}
        sources = []
        for raw, line, file, problems in self.raw_rules:
            if file not in sources:
                sources.append(file)
            rule = self._rule(raw, line, file, problems, names)
            if rule is not None:
                rules.append(replace(rule, index=len(rules)))
        for name, line, file_problems in self.mode_groups:
            if name not in self.groups:
                file_problems.add(line, f"modes: unknown group {name!r} (modes name groups defined under 'groups')")
        problems = [problem for file in self.file_problems for problem in file.items]
        if problems:
            raise ConfigError(problems)
        return Policy(
            mode=self.mode or "enforce",
            groups=dict(self.groups),
            rules=tuple(rules),
            sources=tuple(sources),
            protection=self.protection or Protection(),
            modes=dict(self.modes),
            pipeline=self.pipeline or "reactive",
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
