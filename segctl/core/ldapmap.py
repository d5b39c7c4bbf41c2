"""Turning LDAP entries into directory hosts, per the settings' attribute mapping.

Pure: it gets entries as (DN, {attribute: [values]}) and knows nothing of the LDAP client. An
entry that cannot be mapped is left out with a problem naming its DN, so one broken entry
denies that one device, never the whole directory."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .directory import HOST_NAME_RE, Directory, Host, parse_dpid
from .errors import ConfigProblem
from .ldapsettings import LdapSettings
from .macs import why_not_a_host_mac

_HEX_RUN = re.compile(r"^[0-9a-f]{12}$")


@dataclass(frozen=True)
class Entry:
    dn: str
    attributes: Mapping[str, Sequence[str]]  # attribute names lower-cased

    @classmethod
    def of(cls, dn: str, attributes: Mapping[str, Iterable]) -> Entry:
        values = {}
        for key, items in attributes.items():
            if isinstance(items, (str, bytes)):
                items = [items]
            values[key.lower()] = [_text(item) for item in items if item not in (None, b"", "")]
        return cls(dn, values)

    def values(self, attribute: str | None) -> list[str]:
        return list(self.attributes.get(attribute.lower(), ())) if attribute else []


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def dn_key(dn: str) -> str:
    """A DN compared the way LDAP does for these purposes: case and spaces around ',' ignored."""
    return ",".join(part.strip() for part in dn.split(",")).lower()


def first_rdn_value(dn: str) -> str:
    """`web-servers` from `cn=web-servers,ou=groups,...`."""
    first = dn.split(",", 1)[0]
    return first.split("=", 1)[1].strip() if "=" in first else first.strip()


def parse_mac_loose(text: str) -> str | None:
    """A MAC in any form directories hold: 02:00:00:00:01:01, 2:0:0:0:1:1 (RFC 2307 drops
    leading zeros), 02-00-00-00-01-01, 0200.0000.0101, 020000000101."""
    raw = text.strip().lower()
    for sep in (":", "-"):
        parts = raw.split(sep)
        if len(parts) == 6 and all(1 <= len(p) <= 2 for p in parts):
            raw = "".join(p.zfill(2) for p in parts)
            break
    else:
        raw = raw.replace(".", "")
    if not _HEX_RUN.match(raw):
        return None
    return ":".join(raw[i : i + 2] for i in range(0, 12, 2))


class _HostBuilder:
    def __init__(self, entry: Entry, problems: list[ConfigProblem]):
        self.entry = entry
        self.problems = problems
        self.ok = True

    def problem(self, message: str) -> None:
        self.problems.append(ConfigProblem(self.entry.dn, None, message))
        self.ok = False

    def single(self, attribute: str | None, what: str, required: bool = False) -> str | None:
        values = self.entry.values(attribute)
        if not values:
            if required:
                self.problem(f"no {attribute} ({what})")
            return None
        if len(values) > 1:
            self.problem(f"{attribute} has {len(values)} values; a host has one {what}")
            return None
        return values[0].strip()


def _group_names(groups: Sequence[Entry], settings: LdapSettings) -> tuple[dict[str, list[str]], dict[str, str]]:
    """member DN -> group names, and group DN -> group name."""
    members: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for group in groups:
        values = group.values(settings.groups.name)
        name = values[0] if values else first_rdn_value(group.dn)
        names[dn_key(group.dn)] = name
        for member in group.values(settings.groups.member):
            members.setdefault(dn_key(member), []).append(name)
    return members, names


def _build_host(
    entry: Entry,
    group_names: list[str],
    settings: LdapSettings,
    problems: list[ConfigProblem],
) -> Host | None:
    dev = settings.devices
    b = _HostBuilder(entry, problems)
    name = b.single(dev.name, "name", required=True)
    if name is not None and not HOST_NAME_RE.match(name):
        b.problem(f"name {name!r} must be letters, digits, '.', '_' or '-'")
    mac_text = b.single(dev.mac, "MAC address", required=True)
    mac = parse_mac_loose(mac_text) if mac_text is not None else None
    if mac_text is not None and mac is None:
        b.problem(f"{dev.mac} {mac_text!r} is not a MAC address")
    elif mac is not None and (why := why_not_a_host_mac(mac)) is not None:
        b.problem(f"{dev.mac} {why}, not a host's")
    ip = b.single(dev.ip, "IPv4 address")
    if ip is not None:
        try:
            ip = str(ipaddress.IPv4Address(ip))
        except ValueError:
            b.problem(f"{dev.ip} {ip!r} is not an IPv4 address")
    switch = port = None
    switch_text = b.single(dev.switch, "switch pin")
    if switch_text is not None:
        switch = parse_dpid(switch_text)
        if switch is None:
            b.problem(f"{dev.switch} {switch_text!r} is not a datapath id")
    port_text = b.single(dev.port, "port pin")
    if port_text is not None:
        port = int(port_text) if port_text.isdigit() and 1 <= int(port_text) <= 0xFFFFFF00 else None
        if port is None:
            b.problem(f"{dev.port} {port_text!r} is not a port number")
        elif switch_text is None:
            b.problem("a port pin needs a switch pin too")
    labels: dict[str, str] = {}

    def add_label(key: str, value: str, origin: str) -> None:
        if labels.get(key, value) != value:
            b.problem(f"label {key} is both {labels[key]!r} and {value!r} ({origin})")
        labels[key] = value

    for key, attribute in dev.labels.items():
        value = b.single(attribute, f"label {key}")
        if value is not None:
            add_label(key, value, attribute)
    for item in entry.values(dev.label_attribute):
        key, sep, value = item.partition("=")
        if sep and key.strip() and value.strip():
            add_label(key.strip(), value.strip(), dev.label_attribute)
    for group in sorted(set(group_names)):
        add_label(f"group.{group}", "true", f"group {group}")
        for key, value in settings.groups.labels.get(group, {}).items():
            add_label(key, value, f"group {group}")
    if not b.ok:
        return None
    return Host(name=name, mac=mac, ip=ip, labels=labels, switch=switch, port=port)


def directory_from_entries(
    devices: Iterable[Entry], groups: Iterable[Entry], settings: LdapSettings
) -> tuple[Directory, list[ConfigProblem]]:
    """The directory the entries describe, and a problem for each entry left out."""
    problems: list[ConfigProblem] = []
    members, group_dns = _group_names(list(groups), settings)
    hosts: list[Host] = []
    taken: dict[tuple[str, str], str] = {}
    for entry in sorted(devices, key=lambda e: dn_key(e.dn)):
        names = list(members.get(dn_key(entry.dn), ()))
        for group_dn in entry.values(settings.devices.member_of):
            names.append(group_dns.get(dn_key(group_dn), first_rdn_value(group_dn)))
        host = _build_host(entry, names, settings, problems)
        if host is None:
            continue
        clash = next(
            (
                (what, taken[(what, value)])
                for what, value in (("name", host.name), ("MAC", host.mac), ("IP", host.ip))
                if value and (what, value) in taken
            ),
            None,
        )
        if clash:
            problems.append(ConfigProblem(entry.dn, None, f"{clash[0]} already used by {clash[1]}; entry left out"))
            continue
        for what, value in (("name", host.name), ("MAC", host.mac), ("IP", host.ip)):
            if value:
                taken[(what, value)] = entry.dn
        hosts.append(host)
    return Directory(hosts, source=settings.describe()), problems
