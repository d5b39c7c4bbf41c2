"""LDAP directory settings: where the server is, how to bind, and how entries map to hosts.

A settings file is a YAML file with a top-level `ldap:` key (a directory file has `hosts:`).
An `ldap://host:port/BASE` URL is the short form: anonymous bind and the RFC 2307 defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from .errors import Problems
from .sections import Section
from .yamlsrc import LDict

SCOPES = ("subtree", "level", "base")
_TOP_KEYS = {"ldap", "devices", "groups", "cache"}
_SERVER_KEYS = {"url", "start_tls", "ca_file", "bind_dn", "password_file", "timeout"}
_DEVICE_KEYS = {
    "base",
    "filter",
    "scope",
    "name",
    "mac",
    "ip",
    "switch",
    "port",
    "labels",
    "label_attribute",
    "member_of",
}
_GROUP_KEYS = {"base", "filter", "scope", "name", "member", "labels"}


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


def _filter(section: Section, key: str, default: str) -> str:
    value = section.text(key, default)
    if value and not (value.startswith("(") and value.endswith(")") and value.count("(") == value.count(")")):
        section.problem(key, f"'{key}' {value!r} is not an LDAP filter in (...)")
    return value


def _path(section: Section, key: str, folder: str) -> str | None:
    value = section.text(key)
    return os.path.join(folder, value) if value else None


def _server(section: Section, folder: str) -> ServerSettings:
    url = section.text("url", required=True) or "ldap://invalid"
    if not is_ldap_url(url):
        section.problem("url", f"url {url!r} must start with ldap:// or ldaps://")
    bind_dn = section.text("bind_dn")
    password_file = _path(section, "password_file", folder)
    if bind_dn and not password_file:
        section.problem("bind_dn", "bind_dn needs password_file (a password never goes in here)")
    if password_file and not bind_dn:
        section.problem("password_file", "password_file needs bind_dn")
    start_tls = section.flag("start_tls", False)
    if start_tls and url.lower().startswith("ldaps://"):
        section.problem("start_tls", "start_tls is for ldap:// URLs; ldaps:// is TLS already")
    return ServerSettings(
        url=url,
        start_tls=start_tls,
        ca_file=_path(section, "ca_file", folder),
        bind_dn=bind_dn,
        password_file=password_file,
        timeout=section.seconds("timeout", 0.1, 60, 3.0),
    )


def _devices(section: Section) -> DeviceSettings:
    label_attributes = {}
    labels = section.child("labels", name="devices")
    for key in labels:
        if isinstance(key, str) and isinstance(labels.get(key), str):
            label_attributes[key] = labels.get(key)
        else:
            labels.problem(key, "labels maps a label key to an attribute name")
    defaults = DeviceSettings(base="")
    return DeviceSettings(
        base=section.text("base", required=True) or "",
        filter=_filter(section, "filter", defaults.filter),
        scope=section.choice("scope", SCOPES, "subtree"),
        name=section.text("name", defaults.name),
        mac=section.text("mac", defaults.mac),
        ip=section.text("ip", defaults.ip),
        switch=section.text("switch"),
        port=section.text("port"),
        labels=label_attributes,
        label_attribute=section.text("label_attribute"),
        member_of=section.text("member_of"),
    )


def _groups(section: Section) -> GroupSettings:
    defaults = GroupSettings()
    table = section.child("labels", name="groups")
    labels = {}
    for group in table:
        expected = f"labels of {group} must be a mapping of label: value"
        labels[str(group)] = table.child(group, name=f"groups: labels of {group}", expected=expected).labels()
    return GroupSettings(
        base=section.text("base"),
        filter=_filter(section, "filter", defaults.filter),
        scope=section.choice("scope", SCOPES, "subtree"),
        name=section.text("name", defaults.name),
        member=section.text("member", defaults.member),
        labels=labels,
    )


def parse_ldap_settings(data: LDict, file: str) -> LdapSettings:
    """Validate a settings file (already parsed YAML); raise ConfigError with every problem.
    Relative file names inside it are taken relative to the settings file."""
    problems = Problems(file)
    folder = os.path.dirname(os.path.abspath(file))
    top = Section.read(
        data, problems, line=getattr(data, "line", 1) or 1, expected="'settings' must be a mapping", allowed=_TOP_KEYS
    )
    server = _server(top.child("ldap", allowed=_SERVER_KEYS, required=True), folder)
    devices = _devices(top.child("devices", allowed=_DEVICE_KEYS, required=True))
    groups = GroupSettings()
    if "groups" in top:
        groups = _groups(top.child("groups", allowed=_GROUP_KEYS))
        if groups.base is None and devices.member_of is None:
            top.problem("groups", "groups: give 'base' (search groups) or devices: member_of (AD memberOf)")
    ttl = top.child("cache", allowed={"ttl"}).seconds("ttl", 2, 86400, 60.0)
    problems.raise_if_any()
    return LdapSettings(file, server, devices, groups, ttl)
