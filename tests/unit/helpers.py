"""Shared builders for the unit tests."""

from __future__ import annotations

import textwrap

from segctl.core.directory import parse_directory
from segctl.core.policy import parse_policy
from segctl.core.yamlsrc import load_yaml_text


def directory(text: str, file: str = "directory.yaml"):
    return parse_directory(load_yaml_text(textwrap.dedent(text), file), file)


def policy(text: str, file: str = "policy.yaml"):
    return parse_policy([(load_yaml_text(textwrap.dedent(text), file), file)])


def problems(exc) -> list[str]:
    return [str(p) for p in exc.value.problems]


class Clock:
    """A clock that moves only when a test sets `now`."""

    def __init__(self, now=100.0):
        self.now = now

    def __call__(self):
        return self.now
