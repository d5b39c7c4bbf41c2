"""The host directory: who each MAC address is, where it may attach, which IPv4 it may use."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import Problems
from .macs import why_not_a_host_mac
from .yamlsrc import LDict, load_yaml_file

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
HOST_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_HOST_KEYS = {"mac", "ip", "labels", "switch", "port"}


def normalize_mac(text: str) -> str | None:
    """Lower-case colon form of a MAC address, or None if it is not one."""
    mac = str(text).strip().lower().replace("-", ":")
    return mac if _MAC_RE.match(mac) else None


def label_value(value: Any) -> str:
    """A label value as policies compare it: YAML `true` is the label "true"."""
    return str(value).lower() if isinstance(value, bool) else str(value)


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


def _parse_host(name: Any, entry: Any, line: int, problems: Problems) -> Host | None:
    if not isinstance(name, str) or not HOST_NAME_RE.match(name):
        problems.add(line, f"host name {name!r} must be letters, digits, '.', '_' or '-'")
        return None
    if not isinstance(entry, LDict):
        problems.add(line, f"host {name}: expected a mapping with at least 'mac'")
        return None
    ok = True
    for key in entry:
        if key not in _HOST_KEYS:
            problems.add(
                entry.line_of(key),
                f"host {name}: unknown key {key!r} (allowed: {', '.join(sorted(_HOST_KEYS))})",
            )
            ok = False
    mac = None
    if "mac" not in entry:
        problems.add(entry.line, f"host {name}: 'mac' is required")
        ok = False
    else:
        mac = normalize_mac(entry["mac"]) if isinstance(entry["mac"], str) else None
        if mac is None:
            problems.add(
                entry.line_of("mac"),
                f'host {name}: {entry["mac"]!r} is not a MAC address (write it quoted, like "02:00:00:00:01:01")',
            )
            ok = False
        elif (why := why_not_a_host_mac(mac)) is not None:
            problems.add(entry.line_of("mac"), f"host {name}: {why}, not a host's")
            ok = False
    ip = None
    if entry.get("ip") is not None:
        try:
            ip = str(ipaddress.IPv4Address(str(entry["ip"])))
        except ValueError:
            problems.add(entry.line_of("ip"), f"host {name}: {entry['ip']!r} is not an IPv4 address")
            ok = False
    labels: dict[str, str] = {}
    raw_labels = entry.get("labels", {})
    if raw_labels is None:
        raw_labels = {}
    if not isinstance(raw_labels, dict):
        problems.add(entry.line_of("labels"), f"host {name}: labels must be a mapping key: value")
        ok = False
    else:
        for key, value in raw_labels.items():
            if isinstance(value, (dict, list)) or value is None or not isinstance(key, str):
                problems.add(entry.line_of("labels"), f"host {name}: label {key!r} must be a plain value")
                ok = False
            else:
                labels[key] = label_value(value)
    switch = None
    if entry.get("switch") is not None:
        switch = parse_dpid(entry["switch"])
        if switch is None:
            problems.add(entry.line_of("switch"), f"host {name}: switch {entry['switch']!r} is not a datapath id")
            ok = False
    port = None
    if entry.get("port") is not None:
        value = entry["port"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 0xFFFFFF00:
            problems.add(entry.line_of("port"), f"host {name}: port {value!r} is not a port number")
            ok = False
        else:
            port = value
        if entry.get("switch") is None:
            problems.add(entry.line_of("port"), f"host {name}: a port pin needs 'switch' too")
            ok = False
    if not ok or mac is None:
        return None
    return Host(name=name, mac=mac, ip=ip, labels=labels, switch=switch, port=port)


def parse_directory(data: Any, file: str) -> Directory:
    """Build a Directory from parsed YAML; raise ConfigError with every problem found."""
    problems = Problems(file)
    hosts: list[Host] = []
    if not isinstance(data, LDict) or "hosts" not in data:
        problems.add(getattr(data, "line", 1), "expected a mapping with a 'hosts' key")
        problems.raise_if_any()
    for key in data:
        if key != "hosts":
            problems.add(data.line_of(key), f"unknown key {key!r} (allowed: hosts)")
    entries = data["hosts"]
    if entries is None:
        entries = LDict()
    if not isinstance(entries, LDict):
        problems.add(data.line_of("hosts"), "'hosts' must be a mapping of name: entry")
        problems.raise_if_any()
    seen_mac: dict[str, str] = {}
    seen_ip: dict[str, str] = {}
    for name, entry in entries.items():
        line = entries.line_of(name)
        host = _parse_host(name, entry, line, problems)
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
