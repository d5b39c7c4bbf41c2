"""Typed reads of one mapping of a configuration file, every problem reported at its `FILE:LINE`.

A loader wraps each mapping it reads in a Section and asks it for typed values. A missing or bad
value is reported (at the line of its key) and read as the default, so that one load reports
every problem of a file instead of stopping at the first one.

Messages come in the two forms operators have been reading: `'ttl' must be a number of seconds,
2-86400` (what the value must be) and `proto 'sctp' is not one of tcp, udp, icmp, any` (the value
given, and what it is not)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any, overload

from .errors import Problems
from .macs import why_not_a_host_mac
from .yamlsrc import LDict, LList

# The highest number OpenFlow 1.3 gives a physical port (OFPP_MAX); the numbers above it are
# reserved ports (flood, controller, ...), which no host can sit behind.
OPENFLOW_MAX_PORT = 0xFFFFFF00
PORT_MAX = 65535  # TCP and UDP
# A number written as text: ASCII digits only, and not too many. str.isdigit() also takes '²',
# which int() refuses, and int() refuses more than 4300 digits.
DECIMAL_TEXT = re.compile(r"\s*[0-9]{1,12}\s*")


def label_value(value: Any) -> str:
    """A label value as policies compare it: YAML `true` is the label "true"."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_dpid(value: Any) -> int | None:
    """A datapath id from an int, a decimal/0x string, or the colon form 00:00:..:01."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        try:
            number = int(value.replace(":", ""), 16) if ":" in value else int(value, 0)
        except ValueError:
            return None
        return number if number >= 0 else None
    return None


def parse_port(value: Any, high: int = OPENFLOW_MAX_PORT) -> int | None:
    """A port number 1-`high` from an int or decimal digits (LDAP attributes are text)."""
    if isinstance(value, str) and DECIMAL_TEXT.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        return None
    return value


def _in_range(value: Any, low: float, high: float, whole: bool) -> bool:
    kinds = int if whole else (int, float)
    return not isinstance(value, bool) and isinstance(value, kinds) and low <= value <= high


def _span(low: float, high: float, unit: str) -> str:
    return f"{low}-{high} {unit}" if unit else f"{low}-{high}"


def _with_lines(items: LList) -> list[tuple[int | None, Any]]:
    return [(items.line_of(index), item) for index, item in enumerate(items)]


def _empty(line: int | None) -> LDict:
    data = LDict()
    data.line, data.lines = line, {}
    return data


class Section:
    """One mapping read from a file: its values, where it is named (`line`, None for an LDAP
    entry, whose problems name its DN instead) and the file's shared Problems.

    `name` prefixes its messages (`protection: ...`, `host web1: ...`). `quote_keys` says how a
    `must be` message names a key: `'ttl' must be ...` or, in the policy's protection settings,
    `flood_hold must be ...`. `called` names keys otherwise than by themselves: an LDAP entry's
    host fields by their attributes. A section that is not a mapping (`ok` false) is empty and
    reports nothing more: its one problem is that it is not a mapping."""

    def __init__(
        self,
        data: LDict,
        problems: Problems,
        *,
        name: str = "",
        line: int | None = None,
        quote_keys: bool = True,
        called: Mapping[str, str] | None = None,
        ok: bool = True,
    ):
        self.data = data
        self.problems = problems
        self.name = name
        self.line = data.line if line is None else line
        self.quote_keys = quote_keys
        self.called = dict(called or {})
        self.ok = ok

    @classmethod
    def read(
        cls,
        value: Any,
        problems: Problems,
        *,
        line: int | None,
        expected: str,
        name: str = "",
        allowed: Collection | None = None,
        unknown: str | None = None,
        quote_keys: bool = True,
        called: Mapping[str, str] | None = None,
    ) -> Section:
        """`value` as a section named at `line`: if it is not a mapping, `expected` says so there.
        Keys not `allowed` are reported each at its line, as `unknown` if given."""
        if not isinstance(value, LDict):
            problems.add(line, expected)
            return cls(_empty(line), problems, name=name, line=line, quote_keys=quote_keys, ok=False)
        section = cls(value, problems, name=name, line=line, quote_keys=quote_keys, called=called)
        if allowed is not None:
            section.only(allowed, unknown)
        return section

    # -- where things are, and saying what is wrong with them --------------------------------

    def __contains__(self, key: Any) -> bool:
        return key in self.data

    def __iter__(self) -> Iterator:
        return iter(list(self.data))

    def get(self, key: Any, default: Any = None) -> Any:
        return self.data.get(key, default)

    def line_of(self, key: Any) -> int | None:
        """The line of `key`; for a missing one, the line that names this section."""
        return self.data.line_of(key) if key in self.data else self.line

    def say(self, message: str) -> str:
        """`message` as this section's: after its name."""
        return f"{self.name}: {message}" if self.name else message

    def problem_at(self, line: int | None, message: str) -> None:
        if self.ok:
            self.problems.add(line, self.say(message))

    def problem(self, key: Any, message: str) -> None:
        """A problem at the line of `key` (of this section if it is missing)."""
        self.problem_at(self.line_of(key), message)

    def _must_be(self, key: Any, expectation: str, problem: str | None) -> None:
        shown = self.called.get(key) or (f"'{key}'" if self.quote_keys else str(key))
        self.problem(key, problem or f"{shown} must be {expectation}")

    def _of_value(self, key: Any, message: str) -> None:
        # `called` may name a key by nothing: the YAML directory shows a bad MAC by its value alone.
        shown = self.called.get(key, key)
        self.problem(key, f"{shown} {message}" if shown else message)

    def _is_not(self, key: Any, expectation: str, hint: str = "") -> None:
        self._of_value(key, f"{self.data[key]!r} is not {expectation}{hint}")

    def only(self, allowed: Collection, unknown: str | None = None) -> None:
        """The unknown-key check: each key not `allowed` is a problem at its line."""
        for key in self.data:
            if key not in allowed:
                self.problem(key, unknown or f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")

    def require(self, *keys: str) -> bool:
        """Whether every key is there; each missing one is a problem at this section's line."""
        missing = [key for key in keys if key not in self.data]
        for key in missing:
            self.problem_at(self.line, f"{key!r} is required")
        return not missing

    def _given(self, key: str, required: bool) -> bool:
        """Whether `key` has a value to check. A key written with no value counts as missing."""
        if self.data.get(key) is not None:
            return True
        if required:
            self.problem_at(self.line, f"{key!r} is required")
        return False

    # -- typed reads: each returns the value, or `default` after reporting why it is not one --

    # A read with a default of its own type gives a value of that type: the overloads say so.
    @overload
    def text(self, key: str, default: str, *, required: bool = False) -> str: ...
    @overload
    def text(self, key: str, default: None = None, *, required: bool = False) -> str | None: ...
    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        if not self._given(key, required):
            return default
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            self._must_be(key, "a non-empty string", None)
            return default
        return value.strip()

    def _number(
        self,
        key: str,
        low: float,
        high: float,
        default: Any,
        whole: bool,
        expectation: str,
        required: bool = False,
        problem: str | None = None,
    ) -> Any:
        # Unlike a text, a number written with no value is a bad number, not a missing one.
        if key not in self.data:
            if required:
                self.problem_at(self.line, problem or f"{key!r} is required")
            return default
        if not _in_range(self.data[key], low, high, whole):
            self._must_be(key, expectation, problem)
            return default
        return self.data[key]

    def integer(
        self,
        key: str,
        low: int,
        high: int,
        default: int | None = None,
        *,
        unit: str = "",
        required: bool = False,
        problem: str | None = None,
    ) -> int | None:
        """A whole number `low`-`high`. `problem` replaces the message, missing or bad."""
        return self._number(key, low, high, default, True, _span(low, high, unit), required, problem)

    def number(
        self, key: str, low: float, high: float, default: float | None = None, *, unit: str = ""
    ) -> float | None:
        """A number `low`-`high`, whole or not, as written."""
        return self._number(key, low, high, default, False, _span(low, high, unit))

    def seconds(self, key: str, low: float, high: float, default: float, *, problem: str | None = None) -> float:
        value = self._number(key, low, high, default, False, f"a number of seconds, {low}-{high}", problem=problem)
        return float(value)

    @overload
    def flag(self, key: str, default: bool) -> bool: ...
    @overload
    def flag(self, key: str, default: None = None) -> bool | None: ...
    def flag(self, key: str, default: bool | None = None) -> bool | None:
        value = self.data.get(key, default)
        if not isinstance(value, bool) and key in self.data:
            self._must_be(key, "true or false", None)
            return default
        return value

    def choice(self, key: str, choices: Iterable[str], default: Any = None, *, name_value: bool = False) -> Any:
        """One of `choices`. `name_value`: say `mode 'strict' is not one of ...` rather than
        `'mode' must be one of ...`."""
        choices = list(choices)
        value = self.data.get(key, default)
        if value in choices or key not in self.data:
            return value
        expectation = "one of " + ", ".join(map(str, choices))
        if name_value:
            self._is_not(key, expectation)
        else:
            self._must_be(key, expectation, None)
        return default

    def port(self, key: str, high: int = OPENFLOW_MAX_PORT) -> int | None:
        """A port number 1-`high`: a switch port (the default) or, with PORT_MAX, a TCP/UDP one."""
        if not self._given(key, False):
            return None
        port = parse_port(self.data[key], high)
        if port is None:
            self._is_not(key, "a port number")
        return port

    def dpid(self, key: str, *, required: bool = False) -> int | None:
        if not self._given(key, required):
            return None
        dpid = parse_dpid(self.data[key])
        if dpid is None:
            self._is_not(key, "a datapath id")
        return dpid

    def ipv4(self, key: str) -> str | None:
        if not self._given(key, False):
            return None
        try:
            return str(ipaddress.IPv4Address(str(self.data[key])))
        except ValueError:
            self._is_not(key, "an IPv4 address")
            return None

    def host_mac(self, key: str, parse: Callable[[str], str | None], *, hint: str = "") -> str | None:
        """A host's own MAC address, in the forms `parse` knows (the lower-case colon form back).
        `hint` follows the message for a value that is no MAC address at all."""
        if not self._given(key, False):
            return None
        value = self.data[key]
        mac = parse(value) if isinstance(value, str) else None
        if mac is None:
            self._is_not(key, "a MAC address", hint=hint)
        elif (why := why_not_a_host_mac(mac)) is not None:
            self._of_value(key, f"{why}, not a host's")
            return None
        return mac

    # -- what holds more than one value -------------------------------------------------------

    def child(
        self,
        key: Any,
        *,
        name: str | None = None,
        allowed: Collection | None = None,
        expected: str | None = None,
        unknown: str | None = None,
        quote_keys: bool | None = None,
        called: Mapping[str, str] | None = None,
        required: bool = False,
    ) -> Section:
        """The mapping under `key` as a section (named `key` unless `name` says otherwise). One
        that is missing is empty; one that is not a mapping is reported (`expected`, after this
        section's name) and read as empty."""
        quote = self.quote_keys if quote_keys is None else quote_keys
        name = str(key) if name is None else name
        line = self.line_of(key)
        if not self.ok or not self._given(key, required):
            # Inside a section that is not a mapping, nothing more is worth saying.
            return Section(_empty(line), self.problems, name=name, line=line, quote_keys=quote, ok=self.ok)
        shown = f"'{key}'" if quote else str(key)
        expected = self.say(expected or f"{shown} must be a mapping")
        value = self.data[key]
        return Section.read(
            value,
            self.problems,
            line=line,
            expected=expected,
            name=name,
            allowed=allowed,
            unknown=unknown,
            quote_keys=quote,
            called=called,
        )

    def items(self, key: str) -> list[tuple[int | None, Any]]:
        """The list under `key` as (line, item) pairs: [] if it is missing, or (reported) not a list."""
        value = self.data.get(key)
        if value is not None and not isinstance(value, LList):
            self.problem(key, f"{key!r} must be a list")
        return _with_lines(value) if isinstance(value, LList) else []

    def one_or_more(self, key: str) -> list[tuple[int | None, Any]]:
        """The value under `key` as (line, item) pairs: a list's items, or the one value given."""
        value = self.data.get(key)
        return _with_lines(value) if isinstance(value, LList) else [(self.line_of(key), value)]

    def labels(self, *, must: str = "be a plain value") -> dict[str, str]:
        """This section as labels: each key a string, each value plain (no list, mapping or
        nothing); `must` says what a value must be in the message for one that is not."""
        labels = {}
        for key, value in self.data.items():
            if not isinstance(key, str) or value is None or isinstance(value, (dict, list)):
                self.problem(key, f"label {key!r} must {must}")
                continue
            labels[key] = label_value(value)
        return labels
