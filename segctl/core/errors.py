"""Configuration errors that point at a file and a line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration file."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        # Problems in an LDAP entry have no line: `file` is then the entry's DN.
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """Every problem found while loading a directory or a policy, raised together."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class Problems:
    """Collects problems so one run of a loader reports all of them, not just the first."""

    def __init__(self, file: str):
        self.file = file
        self.items: list[ConfigProblem] = []

    def add(self, line: int | None, message: str) -> None:
        self.items.append(ConfigProblem(self.file, line, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


class DirectoryUnavailable(Exception):
    """A remote directory did not answer (down, unreachable, timed out, TLS handshake failed):
    worth retrying."""


class DirectoryRefused(Exception):
    """A remote directory answered no: bad credentials, missing base DN, bad filter. Retrying
    will not help until someone fixes the settings or the server."""
