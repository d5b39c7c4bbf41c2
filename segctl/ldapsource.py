"""Reading devices and groups from an LDAP server with ldap3 (OpenLDAP, Active Directory).

One read is one bind and two paged searches; it runs in an OS thread (blocking sockets), never
in the controller's event loop."""

from __future__ import annotations

import ssl

import ldap3
from ldap3.core.exceptions import LDAPCommunicationError, LDAPException

from .core.directory import Directory
from .core.errors import ConfigProblem, DirectoryRefused, DirectoryUnavailable
from .core.ldapmap import Entry, directory_from_entries
from .core.ldapsettings import LdapSettings

PAGE_SIZE = 500
_SCOPES = {"subtree": ldap3.SUBTREE, "level": ldap3.LEVEL, "base": ldap3.BASE}


def read_password(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            password = handle.readline().rstrip("\r\n")
    except OSError as exc:
        raise DirectoryRefused(f"cannot read the LDAP password file: {exc}") from None
    if not password:
        raise DirectoryRefused(f"the LDAP password file {path} is empty")
    return password


def _result_text(connection) -> str:
    result = connection.result or {}
    return f"{result.get('description')} {result.get('message') or ''}".strip()


class LdapDirectorySource:
    """A directory read from LDAP; `read()` returns it with the entries it had to leave out."""

    kind = "ldap"

    def __init__(self, settings: LdapSettings):
        self.settings = settings
        self.ttl = settings.ttl
        self.source = settings.describe()

    def _connect(self) -> ldap3.Connection:
        server = self.settings.server
        tls = None
        if server.tls:
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=server.ca_file, version=ssl.PROTOCOL_TLS_CLIENT)
        target = ldap3.Server(
            server.url,
            use_ssl=server.url.lower().startswith("ldaps://"),
            tls=tls,
            connect_timeout=server.timeout,
            get_info=ldap3.NONE,
        )
        password = read_password(server.password_file) if server.password_file else None
        connection = ldap3.Connection(
            target,
            user=server.bind_dn,
            password=password,
            authentication=ldap3.SIMPLE if server.bind_dn else ldap3.ANONYMOUS,
            receive_timeout=max(1, round(server.timeout)),  # ldap3 packs it as an integer
            read_only=True,
            raise_exceptions=False,
        )
        connection.open()
        if server.start_tls and not connection.start_tls():
            raise DirectoryUnavailable(f"StartTLS with {server.url} failed: {connection.result}")
        if not connection.bind():
            who = server.bind_dn or "anonymous"
            raise DirectoryRefused(f"{server.url} refused the bind as {who}: {_result_text(connection)}")
        return connection

    def _search(self, connection, base: str, search_filter: str, scope: str, attributes: list[str]) -> list[Entry]:
        results = connection.extend.standard.paged_search(
            base,
            search_filter,
            search_scope=_SCOPES[scope],
            attributes=sorted(set(attributes)),
            paged_size=PAGE_SIZE,
            generator=False,
        )
        if (connection.result or {}).get("result", 0) != 0:
            raise DirectoryRefused(f"search of {base!r} with {search_filter} failed: {_result_text(connection)}")
        entries = [item for item in results if item.get("type") == "searchResEntry"]
        return [Entry.of(item["dn"], item["raw_attributes"]) for item in entries]

    def read(self) -> tuple[Directory, list[ConfigProblem]]:
        devices, groups = self.settings.devices, self.settings.groups
        wanted = [devices.name, devices.mac]
        wanted += [a for a in (devices.ip, devices.switch, devices.port, devices.label_attribute) if a]
        wanted += list(devices.labels.values())
        if devices.member_of:
            wanted.append(devices.member_of)
        try:
            connection = self._connect()
            try:
                device_entries = self._search(connection, devices.base, devices.filter, devices.scope, wanted)
                group_entries = []
                if groups.base:
                    group_entries = self._search(
                        connection, groups.base, groups.filter, groups.scope, [groups.name, groups.member]
                    )
            finally:
                connection.unbind()
        except (LDAPCommunicationError, OSError) as exc:
            raise DirectoryUnavailable(f"LDAP server {self.settings.server.url} unreachable: {exc}") from None
        except LDAPException as exc:
            raise DirectoryUnavailable(f"LDAP server {self.settings.server.url}: {exc}") from None
        return directory_from_entries(device_entries, group_entries, self.settings)
