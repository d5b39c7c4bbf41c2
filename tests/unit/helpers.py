"""Shared builders for the unit tests."""

from __future__ import annotations

import textwrap

from segctl.core.connections import Connection, FlowKey
from segctl.core.directory import Host, parse_directory
from segctl.core.policy import parse_policy
from segctl.core.topology import Hop
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


def connection_between(
    src: Host, dst: Host, key: FlowKey, path: list[Hop], ident: int = 77, cookie: int = 0, reply: bool = True
) -> Connection:
    """A live connection as flow setup makes one (its replies expected unless `reply` is False)."""
    return Connection(
        id=ident,
        key=key,
        src=src,
        dst=dst,
        rule="r",
        path=list(path),
        created=0.0,
        cookie=cookie,
        reply_key=key.reverse() if reply else None,
    )
