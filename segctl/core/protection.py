"""Keeping one host from hurting the others through the controller.

- Two token buckets per switch port. One counts what is denied there (connections no rule
  allows, senders that fail authentication, stray fragments and errors): a busy client of the
  services it may use never spends it, while a scan, a MAC flood or random destinations run it
  dry in a fraction of a second. The other counts every packet-in, with a budget well above
  what a busy client needs (and an OpenFlow meter in the switch at twice that), so that even a
  flood of allowed-looking connections has a ceiling. A port that runs either bucket dry gets
  a short drop entry for new traffic (its established connections keep their entries), so one
  host cannot delay everyone else's flow setups.
- A scan detector counts each host's denied connections; past a threshold it asks for the
  host to be quarantined (lateral movement looks like many denied connections)."""

from __future__ import annotations

import collections
from dataclasses import dataclass


@dataclass(frozen=True)
class Protection:
    """The policy's `protection:` settings."""

    packet_in_rate: float = 1000.0  # packet-ins per second one port may cause, sustained
    packet_in_burst: int = 2000  # ... and in a burst
    denied_rate: float = 20.0  # denials per second one port may cause, sustained
    denied_burst: int = 100  # ... and in a burst
    flood_hold: int = 5  # seconds a flooding port's new traffic is dropped at the switch
    scan_denied: int | None = None  # quarantine a host after this many denied connections ...
    scan_seconds: float = 10.0  # ... within this many seconds (None: never)
    meters: bool = True  # also cap each port's packet-ins in the switch, with an OpenFlow meter


class PortRateLimiter:
    """A token bucket per (switch, port): at most one per port of the fabric, dropped when the
    switch leaves, so a host cannot grow it."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self._buckets: dict[tuple[int, int], list[float]] = {}

    def allow(self, where: tuple[int, int], now: float) -> bool:
        bucket = self._buckets.get(where)
        if bucket is None:
            bucket = self._buckets[where] = [float(self.burst), now]
        tokens = min(self.burst, bucket[0] + max(0.0, now - bucket[1]) * self.rate)  # (a clock set back owes nothing)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True

    def forget_switch(self, dpid: int) -> None:
        for where in [w for w in self._buckets if w[0] == dpid]:
            del self._buckets[where]


class ScanDetector:
    def __init__(self, denied: int, seconds: float):
        self.denied, self.seconds = denied, seconds
        self._recent: dict[str, collections.deque] = {}

    def record_denial(self, mac: str, now: float) -> bool:
        """Count one denied connection; True when the host just crossed the threshold."""
        times = self._recent.setdefault(mac, collections.deque())
        times.append(now)
        while times and times[0] < now - self.seconds:
            times.popleft()
        if len(times) >= self.denied:
            times.clear()
            return True
        return False
