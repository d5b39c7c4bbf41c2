"""The pure parts of the LDAP directory: settings validation, entry mapping, the TTL cache."""

from __future__ import annotations

import textwrap

import pytest

from segctl.core.dircache import DirectoryCache
from segctl.core.directory import Directory, Host
from segctl.core.errors import ConfigError
from segctl.core.ldapmap import Entry, directory_from_entries, parse_mac_loose
from segctl.core.ldapsettings import parse_ldap_settings, settings_from_url
from segctl.core.yamlsrc import load_yaml_text

from .helpers import problems


def settings(text: str, file: str = "/etc/segctl/ldap.yaml"):
    return parse_ldap_settings(load_yaml_text(textwrap.dedent(text), file), file)


MINIMAL = """
ldap: {url: "ldaps://dc1.corp.example:636", bind_dn: "CN=segctl,OU=Service,DC=corp", password_file: pw}
devices: {base: "OU=Computers,DC=corp", mac: networkAddress, member_of: memberOf, switch: x-dpid, port: x-port}
groups: {labels: {PCI-Servers: {zone: pci}}}
"""


def test_settings_defaults_and_relative_password_file():
    s = settings(MINIMAL)
    assert s.server.password_file == "/etc/segctl/pw" and s.server.tls and s.ttl == 60
    assert s.devices.filter == "(objectClass=ieee802Device)" and s.groups.base is None


def test_settings_problems_name_file_and_line():
    with pytest.raises(ConfigError) as exc:
        settings(
            """
            ldap:
              url: http://nope
              bind_dn: cn=x
              password: hunter2
            devices:
              filter: objectClass=device
              scope: everywhere
            cache: {ttl: 0}
            """,
            "ldap.yaml",
        )
    assert problems(exc) == [
        "ldap.yaml:5: ldap: unknown key 'password' (allowed: bind_dn, ca_file, password_file, start_tls, timeout, url)",
        "ldap.yaml:3: ldap: url 'http://nope' must start with ldap:// or ldaps://",
        "ldap.yaml:4: ldap: bind_dn needs password_file (a password never goes in here)",
        "ldap.yaml:6: devices: 'base' is required",
        "ldap.yaml:7: devices: 'filter' 'objectClass=device' is not an LDAP filter in (...)",
        "ldap.yaml:8: devices: 'scope' must be one of subtree, level, base",
        "ldap.yaml:9: cache: 'ttl' must be a number of seconds, 2-86400",
    ]


def test_url_form_needs_host_and_base():
    assert settings_from_url("ldap://127.0.0.1:389/ou=devices,dc=x").devices.base == "ou=devices,dc=x"
    with pytest.raises(ConfigError, match="base DN"):
        settings_from_url("ldap://127.0.0.1:389")


@pytest.mark.parametrize(
    "text",
    ["02:00:00:00:01:01", "2:0:0:0:1:1", "02-00-00-00-01-01", "0200.0000.0101", "020000000101", "02:00:00:00:01:01 "],
)
def test_mac_forms_directories_hold(text):
    assert parse_mac_loose(text) == "02:00:00:00:01:01"


@pytest.mark.parametrize("text", ["", "02:00:00:00:01", "zz:00:00:00:01:01", "0200.0000.01011", "2:0:0:0:1:100"])
def test_not_macs(text):
    assert parse_mac_loose(text) is None


def test_active_directory_layout_member_of_pins_and_left_out_entries():
    s = settings(MINIMAL)
    entries = [
        Entry.of(
            "CN=PAY01,OU=Computers,DC=corp",
            {
                "cn": ["PAY01"],
                "networkAddress": [b"02:00:00:00:09:01"],
                "memberOf": ["CN=PCI-Servers,OU=Groups,DC=corp", "CN=Backup,OU=Groups,DC=corp"],
                "x-dpid": ["00:00:00:00:00:00:00:02"],
                "x-port": ["7"],
            },
        ),
        Entry.of(
            "CN=TWO-NICS,OU=Computers,DC=corp",
            {"cn": "TWO-NICS", "networkAddress": ["02:00:00:00:09:02", "02:00:00:00:09:03"]},
        ),
        Entry.of("CN=NOMAC,OU=Computers,DC=corp", {"cn": "NOMAC"}),
        Entry.of(
            "CN=PORTONLY,OU=Computers,DC=corp", {"cn": "PORTONLY", "networkAddress": "02:00:00:00:09:04", "x-port": "3"}
        ),
        Entry.of("CN=MCAST,OU=Computers,DC=corp", {"cn": "MCAST", "networkAddress": "03:00:00:00:09:05"}),
    ]
    directory, left_out = directory_from_entries(entries, [], s)
    assert list(directory.by_name) == ["PAY01"]
    host = directory.by_name["PAY01"]
    assert (host.switch, host.port, host.ip) == (2, 7, None)
    assert host.labels == {"group.PCI-Servers": "true", "group.Backup": "true", "zone": "pci"}
    assert sorted(str(p) for p in left_out) == [
        "CN=MCAST,OU=Computers,DC=corp: networkAddress 03:00:00:00:09:05 is a multicast (group) address, not a host's",
        "CN=NOMAC,OU=Computers,DC=corp: no networkAddress (MAC address)",
        "CN=PORTONLY,OU=Computers,DC=corp: a port pin needs a switch pin too",
        "CN=TWO-NICS,OU=Computers,DC=corp: networkAddress has 2 values; a host has one MAC address",
    ]


def _host(name, mac):
    return Host(name=name, mac=mac)


def test_cache_serves_fresh_then_only_bound_hosts_then_nobody():
    cache = DirectoryCache(ttl=10, source="ldap://x")
    assert len(cache.effective([], 0)) == 0 and cache.view(0)["status"] == "starting"
    full = Directory([_host("a", "02:00:00:00:00:0a"), _host("b", "02:00:00:00:00:0b")])
    cache.stored(full, [], now=100)
    assert cache.effective([], 101) is full
    assert cache.next_read_in(101) == 4  # re-read every ttl/2
    cache.failed("down", now=106)
    assert cache.view(106)["status"] == "unreachable"
    assert list(cache.effective(["02:00:00:00:00:0a"], 106).by_name) == ["a"]
    assert cache.next_read_in(106) == 1  # retry soon, back off on each failure
    cache.failed("down", now=107)
    cache.failed("down", now=108)
    assert cache.next_read_in(108) == 2.01  # never sleep past the expiry at 110
    assert len(cache.effective(["02:00:00:00:00:0a"], 111)) == 0
    assert cache.view(111)["status"] == "expired"
    cache.stored(full, [], now=112)
    assert cache.effective([], 112) is full and cache.failures == 0


def test_a_port_pin_int_would_refuse_leaves_the_entry_out():
    s = settings(MINIMAL)
    entry = Entry.of(
        "CN=SQUARE,OU=Computers,DC=corp",
        {"cn": "SQUARE", "networkAddress": "02:00:00:00:09:06", "x-dpid": "1", "x-port": "²"},
    )
    directory, left_out = directory_from_entries([entry], [], s)
    assert len(directory) == 0
    assert [str(p) for p in left_out] == ["CN=SQUARE,OU=Computers,DC=corp: x-port '²' is not a port number"]
