"""LDAP directory settings: where the server is, how to bind, and how entries map to hosts.

A settings file is a YAML file with a top-level `ldap:` key (a directory file has `hosts:`).
An `ldap://host:port/BASE` URL is the short form: anonymous bind and the RFC 2307 defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote, urlsplit

from .directory import label_value
from .errors import Problems
from .yamlsrc import LDict

SCOPES = ("subtree", "level", "base")


@dataclass(frozen=True)
class ServerSettings:
    url: str
    start_tls: bool = False
    ca_file: str | None = None
    bind_dn: str | None = None
    password_file: str | None = None
    timeout: float = 3.0

    @property
    def tls(self) -> bool:
        return self.url.lower().startswith("ldaps://") or self.start_tls


@dataclass(frozen=True)
class DeviceSettings:
    """Which entries are devices, and which attribute carries each host field."""

    base: str
    filter: str = "(objectClass=ieee802Device)"
    scope: str = "subtree"
    name: str = "cn"
    mac: str = "macAddress"
    ip: str | None = "ipHostNumber"
    switch: str | None = None
    port: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # label key -> attribute
    label_attribute: str | None = None  # values "key=value" become labels
    member_of: str | None = None  # attribute listing group DNs (AD memberOf)


@dataclass(frozen=True)
class GroupSettings:
    """Groups whose membership becomes labels: every group gives `group.<name>: "true"`, and the
    groups listed in `labels` give their labels too."""

    base: str | None = None  # None: groups come only from the devices' member_of attribute
    filter: str = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
    scope: str = "subtree"
    name: str = "cn"
    member: str = "member"
    labels: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class LdapSettings:
    source: str  # the settings file or the URL, for messages
    server: ServerSettings
    devices: DeviceSettings
    groups: GroupSettings
    ttl: float = 60.0  # seconds a lookup stays trusted; the directory is re-read every ttl/2

    def describe(self) -> str:
        return f"{self.server.url} ({self.devices.base})"


def is_ldap_url(spec: str) -> bool:
    return spec.lower().startswith(("ldap://", "ldaps://"))


def settings_from_url(url: str) -> LdapSettings:
    """`ldap://host:port/BASE`: anonymous bind, devices and groupOfNames under BASE."""
    parts = urlsplit(url)
    base = unquote(parts.path.lstrip("/"))
    problems = Problems(url)
    if not parts.hostname:
        problems.add(None, "an LDAP URL needs a host: ldap://HOST[:PORT]/BASE-DN")
    if not base:
        problems.add(None, "an LDAP URL needs the base DN of the devices: ldap://HOST[:PORT]/BASE-DN")
    problems.raise_if_any()
    server = ServerSettings(url=f"{parts.scheme}://{parts.netloc}")
    return LdapSettings(url, server, DeviceSettings(base=base), GroupSettings(base=base))


class _Reader:
    """Typed reads of one mapping of the settings file, each problem at its line."""

    def __init__(self, data: Any, section: str, problems: Problems, allowed: set[str], line: int):
        self.problems = problems
        self.section = section
        self.key_line = line  # where the section's key is, for what is missing from it
        self.data = data if isinstance(data, LDict) else LDict()
        if not isinstance(data, LDict):
            self.data.line = max(1, getattr(data, "line", line) or line)
            problems.add(self.data.line, f"'{section}' must be a mapping")
        for key in self.data:
            if key not in allowed:
                problems.add(
                    self.data.line_of(key),
                    f"{section}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})",
                )

    def nested(self, key: str, allowed: set[str]) -> _Reader:
        """A reader for the mapping under `key`, its problems reported at their lines."""
        return _Reader(self.data.get(key), key, self.problems, allowed, self.line(key))

    def line(self, key: str) -> int:
        return self.data.line_of(key) if key in self.data else self.data.line

    def text(self, key: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.problems.add(self.key_line, f"{self.section}: '{key}' is required")
            return default
        if not isinstance(value, str) or not value.strip():
            self.problems.add(self.line(key), f"{self.section}: '{key}' must be a non-empty string")
            return default
        return value.strip()

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.problems.add(self.line(key), f"{self.section}: '{key}' must be true or false")
            return default
        return value

    def seconds(self, key: str, default: float, low: float, high: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            self.problems.add(self.line(key), f"{self.section}: '{key}' must be a number of seconds, {low}-{high}")
            return default
        return float(value)

    def choice(self, key: str, default: str, choices: tuple) -> str:
        value = self.data.get(key, default)
        if value not in choices:
            self.problems.add(self.line(key), f"{self.section}: '{key}' must be one of {', '.join(choices)}")
            return default
        return value

    def filter(self, key: str, default: str) -> str:
        value = self.text(key, default)
        if value and not (value.startswith("(") and value.endswith(")") and value.count("(") == value.count(")")):
            self.problems.add(self.line(key), f"{self.section}: '{key}' {value!r} is not an LDAP filter in (...)")
        return value

    def mapping(self, key: str) -> LDict:
        value = self.data.get(key)
        if value is None:
            return LDict()
        if not isinstance(value, LDict):
            self.problems.add(self.line(key), f"{self.section}: '{key}' must be a mapping")
            return LDict()
        return value

    def path(self, key: str, folder: str) -> str | None:
        value = self.text(key)
        return os.path.join(folder, value) if value else None


def _plain_labels(value: Any, line: int, what: str, problems: Problems) -> dict[str, str]:
    if not isinstance(value, LDict):
        problems.add(line, f"{what} must be a mapping of label: value")
        return {}
    labels = {}
    for key, item in value.items():
        if not isinstance(key, str) or item is None or isinstance(item, (dict, list)):
            problems.add(value.line_of(key), f"{what}: label {key!r} must be a plain value")
            continue
        labels[key] = label_value(item)
    return labels


def parse_ldap_settings(data: LDict, file: str) -> LdapSettings:
    """Validate a settings file (already parsed YAML); raise ConfigError with every problem.
    Relative file names inside it are taken relative to the settings file."""
    problems = Problems(file)
    folder = os.path.dirname(os.path.abspath(file))
    top = _Reader(data, "settings", problems, {"ldap", "devices", "groups", "cache"}, 1)

    server = top.nested("ldap", {"url", "start_tls", "ca_file", "bind_dn", "password_file", "timeout"})
    url = server.text("url", required=True) or "ldap://invalid"
    if not is_ldap_url(url):
        problems.add(server.line("url"), f"ldap: url {url!r} must start with ldap:// or ldaps://")
    bind_dn = server.text("bind_dn")
    password_file = server.path("password_file", folder)
    if bind_dn and not password_file:
        problems.add(server.line("bind_dn"), "ldap: bind_dn needs password_file (a password never goes in here)")
    if password_file and not bind_dn:
        problems.add(server.line("password_file"), "ldap: password_file needs bind_dn")
    start_tls = server.flag("start_tls", False)
    if start_tls and url.lower().startswith("ldaps://"):
        problems.add(server.line("start_tls"), "ldap: start_tls is for ldap:// URLs; ldaps:// is TLS already")
    server_settings = ServerSettings(
        url=url,
        start_tls=start_tls,
        ca_file=server.path("ca_file", folder),
        bind_dn=bind_dn,
        password_file=password_file,
        timeout=server.seconds("timeout", 3.0, 0.1, 60),
    )

    dev = top.nested(
        "devices",
        {"base", "filter", "scope", "name", "mac", "ip", "switch", "port", "labels", "label_attribute", "member_of"},
    )
    label_attrs = {}
    raw = dev.mapping("labels")
    for key, attr in raw.items():
        if not isinstance(key, str) or not isinstance(attr, str):
            problems.add(raw.line_of(key), "devices: labels maps a label key to an attribute name")
        else:
            label_attrs[key] = attr
    defaults = DeviceSettings(base="")
    devices = DeviceSettings(
        base=dev.text("base", required=True) or "",
        filter=dev.filter("filter", defaults.filter),
        scope=dev.choice("scope", "subtree", SCOPES),
        name=dev.text("name", defaults.name),
        mac=dev.text("mac", defaults.mac),
        ip=dev.text("ip", defaults.ip),
        switch=dev.text("switch"),
        port=dev.text("port"),
        labels=label_attrs,
        label_attribute=dev.text("label_attribute"),
        member_of=dev.text("member_of"),
    )

    groups = GroupSettings()
    if "groups" in top.data:
        grp = top.nested("groups", {"base", "filter", "scope", "name", "member", "labels"})
        table = {}
        raw = grp.mapping("labels")
        for name, labels in raw.items():
            table[str(name)] = _plain_labels(labels, raw.line_of(name), f"groups: labels of {name}", problems)
        groups = replace(
            groups,
            base=grp.text("base"),
            filter=grp.filter("filter", groups.filter),
            scope=grp.choice("scope", "subtree", SCOPES),
            name=grp.text("name", groups.name),
            member=grp.text("member", groups.member),
            labels=table,
        )
        if groups.base is None and devices.member_of is None:
            problems.add(top.line("groups"), "groups: give 'base' (search groups) or devices: member_of (AD memberOf)")

    ttl = 60.0
    if "cache" in top.data:
        cache = top.nested("cache", {"ttl"})
        ttl = cache.seconds("ttl", 60.0, 2, 86400)
    problems.raise_if_any()
    return LdapSettings(file, server_settings, devices, groups, ttl)
