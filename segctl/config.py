"""Loading the directory and the policy together, as `run`, `check`, `explain` and reload do."""

from __future__ import annotations

from dataclasses import dataclass

from .core.directory import Directory, load_directory
from .core.errors import ConfigError
from .core.policy import Policy, load_policy


@dataclass(frozen=True)
class Sources:
    directory: str
    policy: str


def load_sources(sources: Sources) -> tuple[Directory, Policy]:
    """Both files validated; one ConfigError carries every problem of both."""
    problems = []
    directory = policy = None
    try:
        directory = load_directory(sources.directory)
    except ConfigError as exc:
        problems.extend(exc.problems)
    try:
        policy = load_policy(sources.policy)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return directory, policy
