"""The controller authenticating Mininet hosts against a real OpenLDAP server (slapd on
loopback, seeded from the shipped policies/ldap/directory.ldif) instead of the YAML file."""

import json
import os
import time

import yaml

from lab.slapd import Slapd

from .conftest import ROOT
from .test_quarantine import echoes, wait_for_echoes

LDAP_DIR = os.path.join(ROOT, "policies", "ldap")
TTL = 8


def lab_settings(tmp_path, slapd: Slapd) -> str:
    """The shipped ldap.yaml, pointed at this test's slapd, with a short ttl."""
    with open(os.path.join(LDAP_DIR, "ldap.yaml")) as handle:
        settings = yaml.safe_load(handle)
    settings["ldap"]["url"] = slapd.url
    settings["ldap"]["password_file"] = os.path.join(LDAP_DIR, "ldap-password")
    settings["cache"]["ttl"] = TTL
    path = tmp_path / "ldap.yaml"
    path.write_text(yaml.safe_dump(settings))
    return str(path)


def directory_status(lab) -> str:
    result = lab.controller.cli("health", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["directory"]["status"]


def wait_for_status(lab, wanted: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if directory_status(lab) == wanted:
            return True
        time.sleep(0.3)
    return False


def test_hosts_authenticated_by_ldap_removal_revokes_and_an_outage_fails_closed(make_lab, tmp_path):
    slapd = Slapd(
        str(tmp_path / "slapd"),
        3950,
        [os.path.join(LDAP_DIR, "directory.ldif")],
        reader="cn=segctl,dc=example,dc=org",
    )
    slapd.start()
    stream = None
    try:
        lab = make_lab("linear", directory=lab_settings(tmp_path, slapd))
        assert lab.directory.source.startswith(slapd.url)
        assert lab.reaches("web1", "app1", "tcp", 8080)
        assert not lab.reaches("app1", "web1", "tcp", 8080)
        assert not lab.reaches("rogue", "app1", "tcp", 8080)

        # A device deleted in LDAP loses its open connection within the ttl.
        log = tmp_path / "app1-db1.log"
        stream = lab.stream("app1", "db1", 5432, str(log))
        assert wait_for_echoes(log, 0)
        with slapd.admin() as admin:
            assert admin.delete("cn=db1,ou=devices,dc=example,dc=org")
        deleted = time.time()
        time.sleep(TTL + 1)
        assert max(echoes(log)) < deleted + TTL, "db1's connection outlived its LDAP entry"
        assert not lab.reaches("app1", "db1", "tcp", 5432)
        changes = [e for e in lab.controller.events() if e["kind"] == "directory-change"]
        assert changes and changes[-1]["revoked"] >= 1

        # LDAP down: hosts already authenticated keep working, a host never seen is denied.
        slapd.stop()
        assert wait_for_status(lab, "unreachable", TTL)
        assert lab.reaches("web1", "app1", "tcp", 8080)
        assert not lab.reaches("hr1", "printer1", "tcp", 9100), "a new host was let in while LDAP was down"
        # ... and after the ttl nobody is trusted.
        assert wait_for_status(lab, "expired", TTL + 2)
        assert not lab.reaches("web1", "app1", "tcp", 8080)

        # Back up: everyone LDAP knows works again, without a controller restart.
        slapd.start()
        assert wait_for_status(lab, "ok", 35)
        assert lab.reaches("hr1", "printer1", "tcp", 9100)
        assert lab.reaches("web1", "app1", "tcp", 8080)
        assert lab.controller.running()
    finally:
        if stream is not None:
            stream.kill()
        slapd.stop()
