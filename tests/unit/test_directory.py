import pytest

from segctl.core.directory import load_directory, normalize_mac
from segctl.core.errors import ConfigError

from .helpers import directory, problems


def test_a_valid_directory_is_indexed_by_name_mac_and_ip():
    d = directory("""
        hosts:
          web1:
            mac: "02:00:00:00:01:01"
            ip: 10.0.1.1
            labels: {role: web, tier: 1, public: true}
            switch: 1
            port: 1
          printer: {mac: "02-00-00-00-06-AA"}
    """)
    web1 = d.by_name["web1"]
    assert d.lookup_mac("02:00:00:00:01:01") is web1
    assert d.by_ip["10.0.1.1"] is web1
    assert web1.labels == {"role": "web", "tier": "1", "public": "true"}
    assert d.find("02:00:00:00:06:aa").name == "printer"
    assert d.find("web1") is web1 and d.find("nobody") is None
    assert web1.may_attach_at(1, 1) and not web1.may_attach_at(1, 2) and not web1.may_attach_at(2, 1)
    assert d.by_name["printer"].may_attach_at(7, 9)


def test_every_problem_is_reported_with_its_line():
    with pytest.raises(ConfigError) as exc:
        directory("""
            hosts:
              a: {mac: "02:00:00:00:00:01", ip: 10.0.0.1}
              b: {mac: "02:00:00:00:00:01"}
              c: {mac: "nonsense"}
              d: {ip: 10.0.0.4}
              e: {mac: "02:00:00:00:00:05", ip: 10.0.0.1}
              f: {mac: "02:00:00:00:00:06", ip: 300.1.1.1}
              g: {mac: "02:00:00:00:00:07", colour: red}
              h: {mac: "02:00:00:00:00:08", port: 3}
              i: {mac: "01:00:5e:00:00:01"}
              j: {mac: "02:00:00:00:00:0a", labels: {role: [a, b]}}
              k: {mac: "02:00:00:00:00:0b", switch: -1}
        """)
    assert problems(exc) == [
        "directory.yaml:4: host b: MAC 02:00:00:00:00:01 is already used by a",
        "directory.yaml:5: host c: 'nonsense' is not a MAC address (write it quoted, like \"02:00:00:00:01:01\")",
        "directory.yaml:6: host d: 'mac' is required",
        "directory.yaml:7: host e: IP 10.0.0.1 is already used by a",
        "directory.yaml:8: host f: '300.1.1.1' is not an IPv4 address",
        "directory.yaml:9: host g: unknown key 'colour' (allowed: ip, labels, mac, port, switch)",
        "directory.yaml:10: host h: a port pin needs 'switch' too",
        "directory.yaml:11: host i: 01:00:5e:00:00:01 is a multicast (group) address, not a host's",
        "directory.yaml:12: host j: label 'role' must be a plain value",
        "directory.yaml:13: host k: switch -1 is not a datapath id",
    ]


def test_structure_errors_and_yaml_syntax_errors_name_the_line():
    with pytest.raises(ConfigError) as exc:
        directory('hosts:\n  a: {mac: "02:00:00:00:00:01"\n')
    assert problems(exc)[0].startswith("directory.yaml:3: YAML syntax")
    with pytest.raises(ConfigError) as exc:
        directory('hosts:\n  a: {mac: "02:00:00:00:00:01"}\n  a: {mac: "02:00:00:00:00:02"}\n')
    assert problems(exc) == ["directory.yaml:3: duplicate key 'a'"]
    with pytest.raises(ConfigError) as exc:
        directory("servers: {}\n")
    assert problems(exc) == ["directory.yaml:1: expected a mapping with a 'hosts' key"]
    with pytest.raises(ConfigError) as exc:
        directory("hosts: {}\nextra: 1\n")
    assert problems(exc) == ["directory.yaml:2: unknown key 'extra' (allowed: hosts)"]


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_directory(str(tmp_path / "missing.yaml"))
    assert problems(exc)[0].startswith(f"{tmp_path}/missing.yaml:1: cannot read")


def test_mac_normalisation():
    assert normalize_mac("02-AA-00-00-00-01") == "02:aa:00:00:00:01"
    assert normalize_mac("02:aa:00:00:00") is None
