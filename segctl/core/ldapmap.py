"""Turning LDAP entries into directory hosts, per the settings' attribute mapping.

Pure: it gets entries as (DN, {attribute: [values]}) and knows nothing of the LDAP client. An
entry that cannot be mapped is left out with a problem naming its DN, so one broken entry
denies that one device, never the whole directory."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .directory import HOST_NAME_RE, HOST_NAME_RULE, Directory, Host, read_host
from .errors import ConfigProblem, Problems
from .ldapsettings import LdapSettings
from .sections import Section
from .yamlsrc import LDict

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


def _single(entry: Entry, attribute: str | None, what: str, problems: Problems, required: bool = False) -> str | None:
    """The one value of `attribute`; None, after saying why, if it has none or several."""
    values = entry.values(attribute)
    if not values:
        if required:
            problems.add(None, f"no {attribute} ({what})")
        return None
    if len(values) > 1:
        problems.add(None, f"{attribute} has {len(values)} values; a host has one {what}")
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


def _host_fields(entry: Entry, settings: LdapSettings, problems: Problems) -> Section:
    """The entry's host fields as a section whose messages name each field by its attribute."""
    dev = settings.devices
    attributes = {"mac": dev.mac, "ip": dev.ip, "switch": dev.switch, "port": dev.port}
    what = {"mac": "MAC address", "ip": "IPv4 address", "switch": "switch pin", "port": "port pin"}
    fields = LDict()
    fields.line, fields.lines = None, {}
    for field, attribute in attributes.items():
        value = _single(entry, attribute, what[field], problems, required=field == "mac")
        if value is not None:
            fields[field] = value
    # An attribute that is not configured (None) gives no field, so it needs no name.
    called = {field: attribute for field, attribute in attributes.items() if attribute is not None}
    return Section(fields, problems, called=called)


def _build_host(entry: Entry, group_names: list[str], settings: LdapSettings, problems: Problems) -> Host | None:
    dev = settings.devices
    before = len(problems.items)
    name = _single(entry, dev.name, "name", problems, required=True)
    if name is not None and not HOST_NAME_RE.match(name):
        problems.add(None, f"name {name!r} {HOST_NAME_RULE}")
    fields = _host_fields(entry, settings, problems)
    labels: dict[str, str] = {}

    def add_label(key: str, value: str, origin: str) -> None:
        if labels.get(key, value) != value:
            problems.add(None, f"label {key} is both {labels[key]!r} and {value!r} ({origin})")
        labels[key] = value

    for key, attribute in dev.labels.items():
        value = _single(entry, attribute, f"label {key}", problems)
        if value is not None:
            add_label(key, value, attribute)
    if dev.label_attribute:
        for item in entry.values(dev.label_attribute):
            key, sep, value = item.partition("=")
            if sep and key.strip() and value.strip():
                add_label(key.strip(), value.strip(), dev.label_attribute)
    for group in sorted(set(group_names)):
        add_label(f"group.{group}", "true", f"group {group}")
        for key, value in settings.groups.labels.get(group, {}).items():
            add_label(key, value, f"group {group}")
    host = read_host(fields, name or "", labels, parse_mac=parse_mac_loose, switch_pin="a switch pin")
    return host if len(problems.items) == before else None


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
        entry_problems = Problems(entry.dn)  # an entry has no lines: its problems name its DN
        host = _build_host(entry, names, settings, entry_problems)
        problems.extend(entry_problems.items)
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
