"""Connection decisions as the flow store keeps them (pure: no SQLite here).

A decision event (kind `allow` or `deny` in the events log) becomes one `Observation`; the store
(segctl.flowstore) sums observations into per-edge aggregates, and hands them back as `FlowEdge`s
to the map, the suggestion, the replay and the blast radius (segctl.core.flowmap, suggest,
replay, reach). `observation_of` reads a line of an old events.jsonl (`segctl import-events`);
live recording hands SQLite the events' JSON text, and the store's SQL reads it by the same
rules (tests check that the two agree on any JSON object, and the store falls back to
`observation_of` for what its SQL cannot read exactly).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .directory import Directory

# What happened to a connection's first packet.
ALLOWED = "allowed"  # a rule allowed it; forwarded
MONITORED = "monitored"  # no rule allowed it; forwarded because its destination is monitored
DENIED = "denied"  # dropped (by policy, or because a host was unknown, spoofed, quarantined...)
VERDICTS = (ALLOWED, MONITORED, DENIED)
DECISION_KINDS = ("allow", "deny")  # the events that record a decision
SERVICE_PROTOCOLS = ("tcp", "udp", "icmp")


@dataclass(frozen=True, slots=True)
class Observation:
    """One decision. `src`/`dst`: the host's directory name, else its MAC (`*_known` False);
    `dst` is "" when the sender was refused before any destination was looked at. `port`: the
    service, the destination port for tcp and udp, the type for icmp (None otherwise).
    `count`: how many identical decisions this stands for (folded repeats)."""

    time: float
    src: str
    src_known: bool
    dst: str
    dst_known: bool
    proto: str
    port: int | None
    verdict: str
    rule: str | None
    reason: str | None
    count: int = 1
    src_ip: str | None = None
    dst_ip: str | None = None


LATEST_TIME = 1e11  # seconds since 1970 (the year 5138): later is a corrupt line, not a decision
MOST_REPEATS = 10**9  # a folded summary never stands for more


def _service(event: Mapping[str, Any]) -> tuple[str, int | None]:
    proto = _text(event.get("proto"))
    if proto is None:
        return "", None
    # ICMP: a FlowKey's source "port" is the type (segctl.core.connections).
    port = event.get("src_port") if proto == "icmp" else event.get("dst_port")
    if proto not in SERVICE_PROTOCOLS or not _whole(port, 0, 65535):
        port = None
    return proto, port


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def observation_of(event: Mapping[str, Any]) -> Observation | None:
    """The decision an event records, or None for an event that records none (quarantine,
    link-up, a malformed line...). Never raises on a well-formed JSON object."""
    kind = event.get("kind")
    when = event.get("time")
    if kind not in DECISION_KINDS or isinstance(when, bool) or not isinstance(when, (int, float)):
        return None
    if not 0 <= when < LATEST_TIME:  # NaN and infinities included (an imported line may hold them)
        return None
    src_name, src_mac = _text(event.get("src")), _text(event.get("src_mac"))
    dst_name, dst_mac = _text(event.get("dst")), _text(event.get("dst_mac"))
    src = src_name if src_name is not None else src_mac
    if src is None:
        return None
    dst = dst_name if dst_name is not None else (dst_mac if dst_mac is not None else "")
    if kind == "allow":
        verdict = ALLOWED
    elif event.get("verdict") == "monitor" or event.get("would_deny") is True:
        verdict = MONITORED
    else:
        verdict = DENIED
    repeats = event.get("repeats")
    # A folded summary stands for its repeats; the first of them was written (and counted) alone.
    count = repeats if isinstance(repeats, int) and _whole(repeats, 1, MOST_REPEATS) else 1
    proto, port = _service(event)
    return Observation(
        time=float(when),
        src=src,
        src_known=src_name is not None,
        dst=dst,
        dst_known=dst_name is not None,
        proto=proto,
        port=port,
        verdict=verdict,
        rule=_text(event.get("rule")),
        reason=_text(event.get("reason")),
        count=count,
        src_ip=_text(event.get("src_ip")),
        dst_ip=_text(event.get("dst_ip")),
    )


def _text(value: Any) -> str | None:
    """A string that is Unicode text; not one with a lone surrogate (JSON's \\ud800 gives one),
    which could be neither stored nor printed."""
    if not isinstance(value, str):
        return None
    if value.isascii():  # what the controller writes: no need to encode it to know
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


@dataclass(frozen=True, slots=True)
class FlowEdge:
    """Observations summed per (src, dst, proto, port, verdict, rule) over a time window.
    `*_labels`: the host's labels when it was recorded (None for a host not in the directory)."""

    src: str
    src_known: bool
    dst: str
    dst_known: bool
    proto: str
    port: int | None
    verdict: str
    rule: str | None
    flows: int
    first_seen: float
    last_seen: float
    src_labels: Mapping[str, str] | None = None
    dst_labels: Mapping[str, str] | None = None

    @property
    def forwarded(self) -> bool:
        return self.verdict != DENIED

    @property
    def between_hosts(self) -> bool:
        """Both ends were directory hosts and the packet had a service (a policy could decide it)."""
        return self.src_known and self.dst_known and self.proto in SERVICE_PROTOCOLS


class EdgeSource(Protocol):
    """Where the analyses read recorded flows from: a FlowStore, or a list in a test."""

    def edges(self, since: float | None = None, now: float | None = None) -> list[FlowEdge]:
        """Every edge seen at or after now - since (all of them for None), summed over the window."""
        ...


class LabelsNow(Protocol):
    def __call__(self, name: str) -> Mapping[str, str] | None: ...


def labels_of(edge: FlowEdge, side: str, directory_labels: LabelsNow | None = None) -> Mapping[str, str] | None:
    """A side's (`src` or `dst`) labels: from the current directory when it knows the host
    (labels are edited between recording and suggesting), else as recorded."""
    name = edge.src if side == "src" else edge.dst
    known = edge.src_known if side == "src" else edge.dst_known
    if directory_labels is not None and known:
        labels = directory_labels(name)
        if labels is not None:
            return labels
    return edge.src_labels if side == "src" else edge.dst_labels


class DirectoryLabels(Mapping[str, Mapping[str, str]]):
    """The labels of a directory's hosts by name, read from the directory itself (nothing is
    copied, so making one costs nothing however many hosts there are)."""

    def __init__(self, directory: Directory):
        self.directory = directory

    def __getitem__(self, name: str) -> Mapping[str, str]:
        return self.directory.by_name[name].labels

    def __iter__(self) -> Iterator[str]:
        return iter(self.directory.by_name)

    def __len__(self) -> int:
        return len(self.directory.by_name)


def labels_in(directory: Directory) -> LabelsNow:
    """`labels_of`'s look-up of a host's labels in `directory` (None for a host it lacks)."""

    def labels(name: str) -> Mapping[str, str] | None:
        host = directory.by_name.get(name)
        return host.labels if host is not None else None

    return labels
