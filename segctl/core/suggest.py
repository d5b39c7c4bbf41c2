"""A draft policy suggested from recorded flows (pure).

Groups are label selectors over the keys `by` (never addresses); a rule is group -> group, one
protocol, the exact service ports seen (a run of consecutive ports, or ports at most `merge_gap`
apart, becomes a range). The service is the first packet's destination port (ICMP: its type), so
a client's ephemeral port never becomes a rule. Only forwarded flows between directory hosts
are ruled; the rest is listed in comments. The draft is parsed back before it is handed out,
and its coverage is what that parsed draft allows of the flows it was made from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .decision import ALLOW, DecisionIndex
from .flowlog import DENIED, FlowEdge, LabelsNow, labels_of
from .flowmap import BLANK, DEFAULT_BY, utc_text
from .policy import _NAME_RE, ICMP_TYPES, Selector, parse_policy
from .textsafe import printable
from .yamlsrc import load_yaml_text

LISTED = 20  # lines each "not suggested" listing shows before it counts the rest
DRAFT_FILE = "<suggested draft>"
# What YAML refuses anywhere in a file, comments included (PyYAML's reader: NON_PRINTABLE)...
_NOT_YAML = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# ... and, inside quotes, what it reads as a line break or a byte order mark.
_UNSAFE_IN_QUOTES = re.compile(f"{_NOT_YAML.pattern}|[\x85\u2028\u2029\ufeff]")
_ICMP_NAMES = {number: name for name, number in ICMP_TYPES.items()}
_NAME_MAX = 60  # of a group name; a rule name joins two of them and must stay within 80
# Why an edge became no rule, in the order the reasons are checked and listed.
NOT_IN_DIRECTORY = "not in the directory"
EXCLUDED = "excluded"
NO_SERVICE = "no protocol and port a rule can name"
DENIED_FLOWS = "denied"
MISSING_LABEL = "a host lacks a --by label"
BELOW_MIN_FLOWS = "below --min-flows"
TOO_MANY_PORTS = "more ports between two groups than --max-ports (a scan of a monitored group?)"
MAX_PORTS = 32  # distinct ports of one protocol between two groups before it looks like a scan


@dataclass(frozen=True)
class SuggestOptions:
    by: tuple[str, ...] = DEFAULT_BY
    min_flows: int = 1
    exclude: tuple[Selector, ...] = ()
    merge_gap: int = 0
    # Past this many distinct ports of one protocol between two groups, list instead of rule:
    # monitor mode forwards a port scan, which would otherwise become a rule (0: no limit).
    max_ports: int = MAX_PORTS
    since: str | None = None  # the window, as the user gave it: only shown in the header


def parse_selector(text: str) -> Selector:
    """`role=scanner` or `role=scanner,env=dev` as a selector; ValueError says what is wrong."""
    pairs = {}
    for part in text.split(","):
        key, equals, value = part.partition("=")
        if not equals or not key.strip(BLANK):
            raise ValueError(f"{text!r} is not a selector like role=scanner or role=scanner,env=dev")
        pairs[key.strip(BLANK)] = value.strip(BLANK)
    return Selector(frozenset(pairs.items()))


def port_ranges(ports: Iterable[int], gap: int = 0) -> list[tuple[int, int]]:
    """Sorted inclusive ranges over `ports`; ports at most `gap` unseen ports apart share one."""
    ranges: list[tuple[int, int]] = []
    for port in sorted(set(ports)):
        if ranges and port - ranges[-1][1] <= gap + 1:
            ranges[-1] = (ranges[-1][0], port)
        else:
            ranges.append((port, port))
    return ranges


@dataclass
class _Seen:
    """Flows summed over some edges: the comment a rule or a listing line carries."""

    flows: int = 0
    first_seen: float = float("inf")
    last_seen: float = float("-inf")
    pairs: set = field(default_factory=set)

    def add(self, edge: FlowEdge) -> None:
        self.flows += edge.flows
        self.first_seen = min(self.first_seen, edge.first_seen)
        self.last_seen = max(self.last_seen, edge.last_seen)
        self.pairs.add((edge.src, edge.dst))

    def merged(self, other: _Seen) -> _Seen:
        both = _Seen(self.flows, self.first_seen, self.last_seen, set(self.pairs))
        both.flows += other.flows
        both.first_seen = min(both.first_seen, other.first_seen)
        both.last_seen = max(both.last_seen, other.last_seen)
        both.pairs |= other.pairs
        return both

    def describe(self) -> str:
        return (
            f"{self.flows} flow(s), {len(self.pairs)} host pair(s), "
            f"first seen {utc_text(self.first_seen)}, last seen {utc_text(self.last_seen)}"
        )


def _has_service(edge: FlowEdge) -> bool:
    if edge.port is None:
        return False
    if edge.proto in ("tcp", "udp"):
        return 1 <= edge.port <= 65535
    return edge.proto == "icmp" and 0 <= edge.port <= 255


def _service_text(proto: str, port: int | None) -> str:
    if port is None:
        return proto or "non-IP"
    return f"icmp type {port}" if proto == "icmp" else f"{proto}/{port}"


def _why_not(
    edge: FlowEdge, src: Mapping[str, str] | None, dst: Mapping[str, str] | None, options: SuggestOptions
) -> str | None:
    """Why `edge` cannot become a rule, or None when it can (`src`/`dst`: its hosts' labels)."""
    if src is None or dst is None or not (edge.src_known and edge.dst_known):
        return NOT_IN_DIRECTORY
    if any(selector.matches(src) or selector.matches(dst) for selector in options.exclude):
        return EXCLUDED
    if not _has_service(edge):
        return NO_SERVICE
    if edge.verdict == DENIED:
        return DENIED_FLOWS
    if any(key not in src or key not in dst for key in options.by):
        return MISSING_LABEL
    return None


def _unique_name(wanted: str, taken: set[str]) -> str:
    """`wanted` made a valid policy name (letters, digits, '_', '.', ':', '-'), unique in `taken`."""
    name = re.sub(r"[^A-Za-z0-9_.:-]+", "_", wanted)[:_NAME_MAX]
    if not re.match(r"[A-Za-z0-9]", name):
        name = ("g" + name)[:_NAME_MAX]
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}-{number}"
    assert _NAME_RE.match(candidate), candidate
    taken.add(candidate)
    return candidate


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar: JSON's string syntax is a subset of YAML's. What JSON leaves
    raw but YAML refuses, or reads as a line break inside quotes (NEL, U+2028, U+2029) or a byte
    order mark, is written as a \\u escape; so are lone surrogates (JSON's \\ud83d\\ude00 pairs
    are not joined by YAML: characters beyond U+FFFF stay raw)."""
    return _UNSAFE_IN_QUOTES.sub(_escaped, json.dumps(text, ensure_ascii=False))


def _comment(text: str) -> str:
    """TEXT safe inside a YAML comment: one line (`printable`), nothing YAML refuses."""
    return _NOT_YAML.sub(_escaped, printable(text))


def _escaped(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def _listing(title: str, lines: list[tuple[int, str]]) -> list[str]:
    """A bounded comment block: the LISTED lines with most flows first, then how many more."""
    if not lines:
        return []
    lines.sort(key=lambda line: (-line[0], line[1]))
    out = [f"# not suggested: {title} ({len(lines)}):"]
    out += [f"#   {_comment(text)}" for _, text in lines[:LISTED]]
    if len(lines) > LISTED:
        out.append(f"#   ... and {len(lines) - LISTED} more")
    return out


@dataclass
class Draft:
    text: str  # the YAML a user saves and reviews
    coverage: dict
    groups: int
    rules: int
    left_out: dict[str, int]  # reason -> flows it held

    def to_json(self) -> dict:
        return {
            "draft": self.text,
            "coverage": self.coverage,
            "groups": self.groups,
            "rules": self.rules,
            "left_out": self.left_out,
        }


def suggest(edges: Sequence[FlowEdge], options: SuggestOptions, labels_now: LabelsNow | None = None) -> Draft:
    """The draft policy that allows the forwarded flows of `edges` between directory hosts, per
    the options; labels from the directory now (`labels_now`), else as recorded."""
    # (source group values, destination group values, proto) -> service port -> what was seen.
    services: dict[tuple, dict[int, _Seen]] = {}
    unruled: dict[str, list[tuple[int, str]]] = {}
    for edge in edges:
        src, dst = labels_of(edge, "src", labels_now), labels_of(edge, "dst", labels_now)
        why = _why_not(edge, src, dst, options)
        if why is not None:
            pair = f"{edge.src or '?'} -> {edge.dst or '?'} {_service_text(edge.proto, edge.port)}"
            line = f"{pair}: {edge.flows} flow(s), last seen {utc_text(edge.last_seen)}"
            unruled.setdefault(why, []).append((edge.flows, line))
            continue
        assert src is not None and dst is not None and edge.port is not None
        key = (tuple(src[k] for k in options.by), tuple(dst[k] for k in options.by), edge.proto)
        services.setdefault(key, {}).setdefault(edge.port, _Seen()).add(edge)
    kept: dict[tuple, dict[int, _Seen]] = {}
    for (src_values, dst_values, proto), ports in services.items():
        for port, seen in ports.items():
            if seen.flows >= options.min_flows:
                kept.setdefault((src_values, dst_values, proto), {})[port] = seen
            else:
                between = _pair_text(options.by, src_values, dst_values)
                line = f"{between} {_service_text(proto, port)}: {seen.describe()}"
                unruled.setdefault(BELOW_MIN_FLOWS, []).append((seen.flows, line))
    for key in [key for key, ports in kept.items() if options.max_ports and len(ports) > options.max_ports]:
        seen = _Seen()
        for one in kept.pop(key).values():
            seen = seen.merged(one)
        src_values, dst_values, proto = key
        line = f"{_pair_text(options.by, src_values, dst_values)} {proto}: {seen.describe()}"
        unruled.setdefault(TOO_MANY_PORTS, []).append((seen.flows, line))
    body, groups = _body(kept, options)
    reasons = (NOT_IN_DIRECTORY, EXCLUDED, NO_SERVICE, DENIED_FLOWS, MISSING_LABEL, BELOW_MIN_FLOWS, TOO_MANY_PORTS)
    for reason in reasons:
        body += _listing(reason, unruled.get(reason, []))
    text = "\n".join(body) + "\n"
    index = DecisionIndex(parse_policy([(load_yaml_text(text, DRAFT_FILE), DRAFT_FILE)]))
    coverage = _coverage(edges, index, labels_now)
    left_out = {reason: sum(flows for flows, _ in lines) for reason, lines in unruled.items()}
    header = _header(options, coverage)
    return Draft("\n".join(header) + "\n" + text, coverage, groups, len(index.rules), left_out)


def _pair_text(by: Sequence[str], src: tuple, dst: tuple) -> str:
    """`role=web -> role=app`: a rule's groups by their label values."""
    return " -> ".join(",".join(f"{k}={v}" for k, v in zip(by, values, strict=True)) for values in (src, dst))


def _body(kept: dict[tuple, dict[int, _Seen]], options: SuggestOptions) -> tuple[list[str], int]:
    """The policy's lines (groups, then one commented rule per group pair and protocol)."""
    taken = {"any"}
    used = sorted({values for src, dst, _ in kept for values in (src, dst)})
    names = {values: _unique_name("-".join(values), taken) for values in used}
    lines = ["mode: enforce", "groups:" if names else "groups: {}"]
    for values in used:
        selector = ", ".join(f"{_quoted(key)}: {_quoted(value)}" for key, value in zip(options.by, values, strict=True))
        lines.append(f"  {_quoted(names[values])}: {{{selector}}}")
    lines.append("rules:" if kept else "rules: []")
    rule_names: set[str] = set()
    for src, dst, proto in sorted(kept):
        ports = kept[(src, dst, proto)]
        seen = _Seen()
        for one in ports.values():
            seen = seen.merged(one)
        name = _unique_name(f"{names[src]}-to-{names[dst]}-{proto}", rule_names)
        lines += [
            f"  # {_comment(_pair_text(options.by, src, dst))}: {seen.describe()}",
            f"  - name: {_quoted(name)}",
            f"    from: {_quoted(names[src])}",
            f"    to: {_quoted(names[dst])}",
            f"    proto: {proto}",
        ]
        if proto == "icmp":
            types = [_quoted(_ICMP_NAMES[t]) if t in _ICMP_NAMES else str(t) for t in sorted(ports)]
            lines.append(f"    icmp_types: [{', '.join(types)}]")
        else:
            ranges = port_ranges(ports, options.merge_gap)
            lines.append("    ports: [" + ", ".join(str(lo) if lo == hi else f'"{lo}-{hi}"' for lo, hi in ranges) + "]")
    return lines, len(names)


def _coverage(edges: Sequence[FlowEdge], index: DecisionIndex, labels_now: LabelsNow | None) -> dict:
    """Connections (flows) observed and those the draft allows, all and forwarded ones."""
    observed = forwarded = allowed = forwarded_allowed = 0
    for edge in edges:
        observed += edge.flows
        forwarded += edge.flows if edge.forwarded else 0
        src, dst = labels_of(edge, "src", labels_now), labels_of(edge, "dst", labels_now)
        if not edge.between_hosts or src is None or dst is None:
            continue
        if index.outcome(src, dst, edge.proto, edge.port).kind == ALLOW:
            allowed += edge.flows
            forwarded_allowed += edge.flows if edge.forwarded else 0
    return {
        "observed": observed,
        "allowed": allowed,
        "forwarded": forwarded,
        "forwarded_allowed": forwarded_allowed,
        "percent": round(100 * allowed / observed, 1) if observed else 100.0,
    }


def _header(options: SuggestOptions, coverage: dict) -> list[str]:
    excluded = " ".join(_comment(_selector_text(s)) for s in options.exclude) or "none"
    return [
        "# Policy suggested by segctl from observed flows: review it, then `segctl replay` and `segctl check` it.",
        f"# window: {_comment(options.since or 'everything recorded')}; by: {_comment(','.join(options.by))}; "
        f"min flows: {options.min_flows}; merge gap: {options.merge_gap}; "
        f"max ports: {options.max_ports or 'no limit'}; excluded: {excluded}",
        f"# coverage: this draft allows {coverage['allowed']} of {coverage['observed']} connections observed "
        f"({coverage['percent']}%); {coverage['forwarded_allowed']} of the {coverage['forwarded']} forwarded",
    ]


def _selector_text(selector: Selector) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(selector.pairs))
