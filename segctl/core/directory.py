"""The host directory: who each MAC address is, where it may attach, which IPv4 it may use."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import Problems
from .sections import Section
from .sections import label_value as label_value  # the directory's before there were sections
from .sections import parse_dpid as parse_dpid
from .yamlsrc import LDict, load_yaml_file

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
HOST_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
HOST_NAME_RULE = "must be letters, digits, '.', '_' or '-'"
_HOST_KEYS = {"mac", "ip", "labels", "switch", "port"}
# A bad MAC or IP is shown by its value alone (`'nonsense' is not a MAC address`), a bad pin
# by its key and value (`switch -1 is not a datapath id`).
_SHOWN_BY_VALUE = {"mac": "", "ip": ""}


def normalize_mac(text: str) -> str | None:
    """Lower-case colon form of a MAC address, or None if it is not one."""
    mac = str(text).strip().lower().replace("-", ":")
    return mac if _MAC_RE.match(mac) else None


@dataclass(frozen=True)
class Host:
    """One directory entry. `labels` drive policy; `switch`/`port` pin where it may attach."""

    name: str
    mac: str
    ip: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    switch: int | None = None
    port: int | None = None

    def may_attach_at(self, dpid: int, port: int) -> bool:
        if self.switch is not None and self.switch != dpid:
            return False
        return self.port is None or self.port == port


class Directory:
    """An immutable set of hosts indexed by name, MAC and IPv4 address."""

    def __init__(self, hosts: Iterable[Host], source: str = "<memory>"):
        self.source = source
        self.by_name: dict[str, Host] = {}
        self.by_mac: dict[str, Host] = {}
        self.by_ip: dict[str, Host] = {}
        for host in hosts:
            self.by_name[host.name] = host
            self.by_mac[host.mac] = host
            if host.ip:
                self.by_ip[host.ip] = host

    def __len__(self) -> int:
        return len(self.by_name)

    def __iter__(self):
        return iter(self.by_name.values())

    def lookup_mac(self, mac: str) -> Host | None:
        return self.by_mac.get(mac)

    def find(self, name_or_mac: str) -> Host | None:
        """A host by directory name or by MAC address (the CLI's HOST argument)."""
        host = self.by_name.get(name_or_mac)
        if host is None:
            mac = normalize_mac(name_or_mac)
            host = self.by_mac.get(mac) if mac else None
        return host


def read_host(
    fields: Section,
    name: str,
    labels: Mapping[str, str],
    *,
    parse_mac: Callable[[str], str | None] = normalize_mac,
    mac_hint: str = "",
    switch_pin: str = "'switch'",
) -> Host | None:
    """The host `fields` (mac, ip, switch, port) describe: a YAML directory entry or an LDAP
    entry. None, after reporting each problem, if any field is wrong or the MAC is missing.
    `switch_pin` is what a port pin without a switch pin is told it needs."""
    before = len(fields.problems.items)
    mac = fields.host_mac("mac", parse_mac, hint=mac_hint)
    ip = fields.ipv4("ip")
    switch = fields.dpid("switch")
    port = fields.port("port")
    if fields.get("port") is not None and fields.get("switch") is None:
        fields.problem("port", f"a port pin needs {switch_pin} too")
    if len(fields.problems.items) != before or mac is None:
        return None
    return Host(name=name, mac=mac, ip=ip, labels=dict(labels), switch=switch, port=port)


def _parse_host(hosts: Section, name: Any) -> Host | None:
    if not isinstance(name, str) or not HOST_NAME_RE.match(name):
        hosts.problem(name, f"host name {name!r} {HOST_NAME_RULE}")
        return None
    entry = hosts.child(
        name,
        name=f"host {name}",
        allowed=_HOST_KEYS,
        expected=f"host {name}: expected a mapping with at least 'mac'",
        called=_SHOWN_BY_VALUE,
    )
    entry.require("mac")
    labels = entry.child("labels", name=entry.name, expected="labels must be a mapping of label: value").labels()
    # YAML reads 02:00:00:00:01:01 unquoted as a number (base 60): say how to write a MAC.
    return read_host(entry, name, labels, mac_hint=' (write it quoted, like "02:00:00:00:01:01")')


def parse_directory(data: Any, file: str) -> Directory:
    """Build a Directory from parsed YAML; raise ConfigError with every problem found."""
    problems = Problems(file)
    hosts: list[Host] = []
    shape = "expected a mapping with a 'hosts' key"
    if not isinstance(data, LDict) or "hosts" not in data:
        problems.add(getattr(data, "line", 1), shape)
        problems.raise_if_any()
    top = Section.read(data, problems, line=data.line, expected=shape, allowed={"hosts"})
    entries = top.child("hosts", name="", expected="'hosts' must be a mapping of name: entry")
    problems.raise_if_any()
    seen_mac: dict[str, str] = {}
    seen_ip: dict[str, str] = {}
    for name in entries:
        line = entries.line_of(name)
        host = _parse_host(entries, name)
        if host is None:
            continue
        if host.mac in seen_mac:
            problems.add(line, f"host {name}: MAC {host.mac} is already used by {seen_mac[host.mac]}")
            continue
        if host.ip and host.ip in seen_ip:
            problems.add(line, f"host {name}: IP {host.ip} is already used by {seen_ip[host.ip]}")
            continue
        seen_mac[host.mac] = name
        if host.ip:
            seen_ip[host.ip] = name
        hosts.append(host)
    problems.raise_if_any()
    return Directory(hosts, source=file)


def load_directory(path: str) -> Directory:
    """Load and validate a YAML directory file."""
    return parse_directory(load_yaml_file(path), path)
