"""Connection decisions as the flow store keeps them (pure: no SQLite here).

A decision event (kind `allow` or `deny` in the events log) becomes one `Observation`; the store
(segctl.flowstore) sums observations into per-edge aggregates, and hands them back as `FlowEdge`s
to the map, the suggestion, the replay and the blast radius (segctl.core.flowmap, suggest,
replay, reach). The same conversion reads a live event and a line of an old events.jsonl
(`segctl import-events`), so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

# What happened to a connection's first packet.
ALLOWED = "allowed"  # a rule allowed it; forwarded
MONITORED = "monitored"  # no rule allowed it; forwarded because its destination is monitored
DENIED = "denied"  # dropped (by policy, or because a host was unknown, spoofed, quarantined...)
VERDICTS = (ALLOWED, MONITORED, DENIED)
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


def _service(event: Mapping[str, Any]) -> tuple[str, int | None]:
    proto = event.get("proto")
    if not isinstance(proto, str):
        return "", None
    # ICMP: a FlowKey's source "port" is the type (segctl.core.connections).
    port = event.get("src_port") if proto == "icmp" else event.get("dst_port")
    if proto not in SERVICE_PROTOCOLS or isinstance(port, bool) or not isinstance(port, int):
        port = None
    return proto, port


def observation_of(event: Mapping[str, Any]) -> Observation | None:
    """The decision an event records, or None for an event that records none (quarantine,
    link-up, a malformed line...). Never raises on a well-formed JSON object."""
    kind = event.get("kind")
    when = event.get("time")
    if kind not in ("allow", "deny") or isinstance(when, bool) or not isinstance(when, (int, float)):
        return None
    src_name, src_mac = event.get("src"), event.get("src_mac")
    dst_name, dst_mac = event.get("dst"), event.get("dst_mac")
    src = src_name if isinstance(src_name, str) else src_mac
    if not isinstance(src, str):
        return None
    dst = dst_name if isinstance(dst_name, str) else (dst_mac if isinstance(dst_mac, str) else "")
    if kind == "allow":
        verdict = ALLOWED
    elif event.get("verdict") == "monitor" or event.get("would_deny") is True:
        verdict = MONITORED
    else:
        verdict = DENIED
    repeats = event.get("repeats")
    # A folded summary stands for its repeats; the first of them was written (and counted) alone.
    count = repeats if isinstance(repeats, int) and not isinstance(repeats, bool) and repeats > 0 else 1
    proto, port = _service(event)
    rule, reason = event.get("rule"), event.get("reason")
    return Observation(
        time=float(when),
        src=src,
        src_known=isinstance(src_name, str),
        dst=dst,
        dst_known=isinstance(dst_name, str),
        proto=proto,
        port=port,
        verdict=verdict,
        rule=rule if isinstance(rule, str) else None,
        reason=reason if isinstance(reason, str) else None,
        count=count,
        src_ip=_text(event.get("src_ip")),
        dst_ip=_text(event.get("dst_ip")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


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
