"""The last directory read from a remote source (LDAP), how fresh it is, and what the controller
may trust when the source stops answering.

- Healthy: the directory is re-read every ttl/2, so a removed device loses its flows within ttl.
- Source down: only hosts already authenticated keep working, until ttl after the last good
  read; a host not yet seen is denied (fail closed). Reads are retried with back-off.
- Expired: no host is trusted at all until the source answers again."""

from __future__ import annotations

from .directory import Directory
from .errors import ConfigProblem

MAX_RETRY = 30.0


class DirectoryCache:
    def __init__(self, ttl: float, source: str):
        self.ttl = ttl
        self.source = source
        self.directory: Directory | None = None
        self.read_at: float | None = None
        self.status = "starting"
        self.last_error: str | None = None
        self.failures = 0
        self.problems: list[ConfigProblem] = []

    def stored(self, directory: Directory, problems: list[ConfigProblem], now: float) -> None:
        self.directory, self.problems, self.read_at = directory, list(problems), now
        self.status, self.last_error, self.failures = "ok", None, 0

    def failed(self, error: str, now: float) -> None:
        self.failures += 1
        self.last_error = error
        self.status = "expired" if self.expired(now) else "unreachable"

    def expired(self, now: float) -> bool:
        return self.read_at is None or now - self.read_at > self.ttl

    def next_read_in(self, now: float) -> float:
        """Seconds until the next read should start."""
        if self.status == "ok" and self.read_at is not None:
            return max(0.0, self.read_at + self.ttl / 2 - now)
        backoff = min(MAX_RETRY, self.ttl / 2, 2.0 ** max(0, self.failures - 1))
        if self.read_at is not None and not self.expired(now):
            # Never sleep past the moment the cached entries expire.
            backoff = min(backoff, max(0.0, self.read_at + self.ttl - now) + 0.01)
        return backoff

    def effective(self, bound_macs, now: float) -> Directory:
        """The directory the controller may use now."""
        if self.directory is not None and self.status == "ok" and not self.expired(now):
            return self.directory
        if self.directory is None or self.expired(now):
            return Directory([], source=f"{self.source} (unreachable, nothing cached)")
        bound = set(bound_macs)
        return Directory(
            (host for host in self.directory if host.mac in bound),
            source=f"{self.source} (unreachable, authenticated hosts only)",
        )

    def view(self, now: float) -> dict:
        status = self.status
        if status not in ("ok", "starting") and self.expired(now):
            status = "expired"
        return {
            "status": status,
            "source": self.source,
            "hosts": len(self.directory) if self.directory is not None else 0,
            "entries_left_out": len(self.problems),
            "last_read_age": None if self.read_at is None else round(now - self.read_at, 1),
            "ttl": self.ttl,
            "last_error": self.last_error,
        }
