"""The LDAP directory against a real OpenLDAP server (Debian's slapd on loopback, a throwaway
database seeded from tests/ldap/devices.ldif), driving the controller core on a fake fabric."""

from __future__ import annotations

import itertools
import os
import time

import pytest

from lab.certs import LabPki
from lab.slapd import Slapd
from segctl.cli import main as cli_main
from segctl.config import Sources, load_sources, open_directory
from segctl.core.errors import ConfigError, DirectoryUnavailable
from segctl.core.events import EventLog
from segctl.runtime import Runtime

from ..fakenet import APP, DB, WEB, FabricShell, Net, arp_request, icmp_echo, tcp

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LDIF = os.path.join(HERE, "ldap", "devices.ldif")
POLICY = os.path.join(HERE, "ldap", "policy.yaml")
SUFFIX = "dc=segctl,dc=test"
READER = f"cn=segctl,{SUFFIX}"
_ports = itertools.count(3891)

SETTINGS = """
ldap:
  url: {url}
  bind_dn: {reader}
  password_file: password
{server_extra}
devices:
  base: ou=devices,{suffix}
  filter: (&(objectClass=ieee802Device)(!(description=disabled)))
  labels: {{dept: ou}}
  label_attribute: description
groups:
  base: ou=groups,{suffix}
  labels:
    web-servers: {{role: web}}
    db-servers: {{role: db}}
cache:
  ttl: {ttl}
"""


@pytest.fixture
def slapd(tmp_path):
    server = Slapd(str(tmp_path / "slapd"), next(_ports), [LDIF], suffix=SUFFIX, reader=READER)
    server.start()
    yield server
    server.stop()


def settings(tmp_path, url, password="test-reader-password", ttl=60, server_extra="") -> str:
    (tmp_path / "password").write_text(password + "\n")
    path = tmp_path / "ldap.yaml"
    path.write_text(SETTINGS.format(url=url, reader=READER, suffix=SUFFIX, ttl=ttl, server_extra=server_extra))
    return str(path)


def runtime_for(path: str) -> Runtime:
    return Runtime(Sources(path, POLICY), EventLog())


def network(runtime: Runtime) -> Net:
    """The fake fabric, driven by this runtime's controller and receiving what it sends."""
    net = Net(core=runtime.controller)
    runtime.switches = FabricShell(net.fabric)
    return net


def forwarded(net: Net, dpid: int, port: int, frame: bytes) -> bool:
    """Send a connection's first packet through the controller; then, is it forwarded?"""
    net.send(dpid, port, frame)
    return net.trace(dpid, port, frame)[0] == "out"


def test_devices_map_to_hosts_with_labels_from_attributes_and_groups(slapd, tmp_path):
    directory, problems = open_directory(settings(tmp_path, slapd.url)).read()
    assert {host.name: host.mac for host in directory} == {"web": WEB, "db": DB, "app": APP}
    assert directory.by_name["web"].labels == {"role": "web", "env": "prod", "group.web-servers": "true"}
    assert directory.by_name["db"].labels == {
        "role": "db",
        "dept": "finance",
        "group.db-servers": "true",
        "group.pci": "true",
    }
    assert directory.by_name["app"].labels == {"role": "app"}
    assert directory.by_name["db"].ip == "10.0.0.2"
    left_out = {p.file.split(",")[0]: p.message for p in problems}
    assert set(left_out) == {"cn=broken", "cn=zz-twin", "cn=both-roles"}
    assert "not a MAC address" in left_out["cn=broken"]
    assert "MAC already used by cn=web" in left_out["cn=zz-twin"]
    assert "label role is both 'db' and 'web'" in left_out["cn=both-roles"]


def test_check_and_explain_work_against_ldap(slapd, tmp_path, capsys):
    path = settings(tmp_path, slapd.url)
    assert cli_main(["check", "--directory", path, "--policy", POLICY]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and all(line.startswith("cn=") for line in out)
    assert cli_main(["explain", "--directory", path, "--policy", POLICY, "web", "db", "--port", "5432"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "allow"
    assert cli_main(["explain", "--directory", path, "--policy", POLICY, "app", "db", "--port", "5432"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "deny"


def test_known_devices_are_authenticated_and_strangers_denied(slapd, tmp_path):
    runtime = runtime_for(settings(tmp_path, slapd.url))
    net = network(runtime)
    net.announce()
    assert forwarded(net, 1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432))
    assert not forwarded(net, 2, 2, tcp(APP, DB, "10.0.0.3", "10.0.0.2", 40000, 5432))
    stranger = "02:00:00:00:00:44"  # in LDAP, but left out: its labels contradict each other
    net.send(1, 2, arp_request(stranger, "10.0.0.44", "10.0.0.2"))
    assert stranger not in runtime.controller.bindings.by_mac
    assert runtime.health()["directory"]["status"] == "ok"
    assert runtime.health()["directory"]["entries_left_out"] == 3


def test_removing_a_device_from_ldap_revokes_its_flows(slapd, tmp_path):
    runtime = runtime_for(settings(tmp_path, slapd.url))
    net = network(runtime)
    net.announce()
    net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432))
    assert len(runtime.controller.connections) == 1
    with slapd.admin() as admin:
        assert admin.delete(f"cn=db,ou=devices,{SUFFIX}")
    runtime.refresh_directory()
    assert len(runtime.controller.connections) == 0
    assert "db" not in runtime.controller.directory.by_name
    assert any(e["kind"] == "directory-change" and e["revoked"] == 1 for e in runtime.events.latest(50))


def test_directory_down_fails_closed_for_new_hosts_then_expires_and_recovers(slapd, tmp_path):
    runtime = runtime_for(settings(tmp_path, slapd.url, ttl=2))
    net = network(runtime)
    net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
    net.send(2, 1, arp_request(DB, "10.0.0.2", "10.0.0.2"))
    slapd.stop()
    runtime.refresh_directory()
    health = runtime.health()["directory"]
    assert health["status"] == "unreachable" and "unreachable" in health["last_error"]
    # Authenticated before the outage: still served. Never seen: denied, although LDAP knew it.
    assert forwarded(net, 1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40001, 5432))
    net.send(2, 2, icmp_echo(APP, DB, "10.0.0.3", "10.0.0.2"))
    assert APP not in runtime.controller.bindings.by_mac
    time.sleep(2.1)  # past the ttl: nothing cached is trusted any more
    runtime.refresh_directory()
    assert runtime.health()["directory"]["status"] == "expired"
    assert len(runtime.controller.connections) == 0 and len(runtime.controller.directory) == 0
    assert not forwarded(net, 1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40002, 5432))
    slapd.start()
    runtime.refresh_directory()
    assert runtime.health()["directory"]["status"] == "ok"
    net.announce()
    assert forwarded(net, 1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40003, 5432))
    assert APP in runtime.controller.bindings.by_mac
    kinds = [e.get("status") for e in runtime.events.latest(100) if e["kind"] == "directory"]
    assert kinds[-3:] == ["unreachable", "expired", "ok"]


def test_a_controller_started_while_ldap_is_down_trusts_nobody_and_catches_up(slapd, tmp_path):
    path = settings(tmp_path, slapd.url)
    slapd.stop()
    runtime = runtime_for(path)
    assert len(runtime.controller.directory) == 0
    assert runtime.health()["directory"]["status"] == "expired"
    slapd.start()
    runtime.refresh_directory()
    assert len(runtime.controller.directory) == 3


def test_bad_credentials_are_a_clear_error(slapd, tmp_path, capsys):
    path = settings(tmp_path, slapd.url, password="wrong-password")
    with pytest.raises(ConfigError) as exc:
        runtime_for(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: {slapd.url} refused the bind as {READER}: invalidCredentials")
    assert cli_main(["check", "--directory", path, "--policy", POLICY]) == 1
    assert "invalidCredentials" in capsys.readouterr().out


def test_ldap_url_form_reads_with_anonymous_bind(tmp_path):
    server = Slapd(str(tmp_path / "anon"), next(_ports), [LDIF], suffix=SUFFIX, reader=None)
    with server:
        directory, _ = open_directory(f"{server.url}/ou=devices,{SUFFIX}").read()
    assert {"web", "db", "app"} <= set(directory.by_name)


def test_starttls_and_ldaps_verify_the_server_certificate(tmp_path):
    pki = LabPki(str(tmp_path / "pki"))
    cert, key = pki.issue("slapd")
    other = LabPki(str(tmp_path / "other-pki"), name="someone else's CA")
    port, tls_port = next(_ports), next(_ports)
    server = Slapd(
        str(tmp_path / "tls"),
        port,
        [LDIF],
        suffix=SUFFIX,
        reader=READER,
        tls=(pki.ca_cert, cert, key),
        tls_port=tls_port,
    )
    with server:
        for name, url, extra in (
            ("starttls", server.url, "  start_tls: true\n"),
            ("ldaps", f"ldaps://127.0.0.1:{tls_port}", ""),
        ):
            folder = tmp_path / name
            folder.mkdir()
            good = settings(folder, url, server_extra=extra + f"  ca_file: {pki.ca_cert}")
            directory, _ = open_directory(good).read()
            assert len(directory) == 3, name
            bad = settings(folder, url, server_extra=extra + f"  ca_file: {other.ca_cert}")
            with pytest.raises(DirectoryUnavailable, match="(?i)certificate"):
                open_directory(bad).read()


def test_strict_load_names_every_entry_left_out(slapd, tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_sources(Sources(settings(tmp_path, slapd.url), POLICY))
    assert sorted(p.file.split(",")[0] for p in exc.value.problems) == ["cn=both-roles", "cn=broken", "cn=zz-twin"]


def test_a_reload_may_switch_between_ldap_and_a_yaml_directory(slapd, tmp_path):
    path = settings(tmp_path, slapd.url)
    runtime = runtime_for(path)
    assert runtime.cache is not None
    yaml_directory = 'hosts:\n  web: {mac: "02:00:00:00:00:01", ip: 10.0.0.1, labels: {role: web}}\n'
    (tmp_path / "ldap.yaml").write_text(yaml_directory)
    assert runtime.reload()["ok"]
    assert runtime.cache is None and runtime.next_refresh_in(time.time()) > 0
    runtime.refresh_directory()  # the refresh loop keeps running; with a YAML file it has nothing to do
    assert list(runtime.controller.directory.by_name) == ["web"]
    settings(tmp_path, slapd.url)
    assert runtime.reload()["ok"] and runtime.cache is not None
    runtime.refresh_directory()
    assert len(runtime.controller.directory) == 3
