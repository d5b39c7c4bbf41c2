"""Lab topology files: read without Mininet, every problem at its line."""

from __future__ import annotations

import os
import textwrap

import pytest

from lab.topology import load_topology
from segctl.core.directory import load_directory
from segctl.core.errors import ConfigError

from .helpers import directory, problems

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOSTS = directory("""
    hosts:
      web1: {mac: "02:00:00:00:01:01", ip: 10.0.0.11}
      db1: {mac: "02:00:00:00:03:01", ip: 10.0.0.31}
""")


def topology(tmp_path, text: str):
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return load_topology(str(path), HOSTS)


@pytest.mark.parametrize("name", ["single", "linear", "leaf-spine"])
def test_the_lab_topologies_load(name):
    lab = load_topology(
        os.path.join(ROOT, "topologies", f"{name}.yaml"), load_directory(f"{ROOT}/policies/directory.yaml")
    )
    assert lab.name == name and lab.hosts and all(dpid > 0 for dpid in lab.switches.values())
    assert all(a in lab.switches and b in lab.switches for a, b in lab.links)


def test_hosts_take_their_addresses_from_the_directory_unless_given(tmp_path):
    lab = topology(
        tmp_path,
        """
        name: two
        switches:
          s1: {dpid: 1}
          s2: {dpid: "0x2"}
        hosts:
          web1: {switch: s1, port: 1}
          other: {switch: s2, port: 1, mac: "02-00-00-00-09-09", ip: 10.0.0.99}
        links:
          - [s1, s2]
        """,
    )
    assert lab.switches == {"s1": 1, "s2": 2} and lab.links == (("s1", "s2"),)
    assert lab.host("web1").mac == "02:00:00:00:01:01" and lab.host("web1").ip == "10.0.0.11"
    assert (lab.host("other").switch, lab.host("other").mac) == ("s2", "02:00:00:00:09:09")


def test_every_problem_is_reported_with_its_line(tmp_path):
    with pytest.raises(ConfigError) as exc:
        topology(
            tmp_path,
            """
            switches:
              s1: {dpid: 1}
              s2: {dpid: 0}
              s3: 7
            hosts:
              web1: {switch: s1, port: 1}
              db1: {switch: s1, port: 1}
              stranger: {switch: s1, port: 2}
              lost: {switch: s9, port: 3}
              odd: {switch: s1, port: 4, mac: "01:00:5e:00:00:01", ip: 10.0.0.300, colour: red}
            links:
              - [s1, s9]
            extra: 1
            """,
        )
    path = tmp_path / "t.yaml"
    assert problems(exc) == [
        f"{path}:13: unknown key 'extra' (allowed: hosts, links, name, switches)",
        f"{path}:3: switch s2: dpid must be a positive number",
        f"{path}:4: switch s3: expected {{dpid: N}}",
        f"{path}:7: host db1: port 1 of s1 is taken by web1",
        f"{path}:8: host stranger: not in the directory, so give it 'mac' and 'ip'",
        f"{path}:9: host lost: 'switch' must be one of s1",
        f"{path}:9: host lost: not in the directory, so give it 'mac' and 'ip'",
        f"{path}:10: host odd: unknown key 'colour' (allowed: ip, mac, port, switch)",
        f"{path}:10: host odd: mac 01:00:5e:00:00:01 is a multicast (group) address, not a host's",
        f"{path}:10: host odd: ip '10.0.0.300' is not an IPv4 address",
        f"{path}:12: a link is [switch, switch] of this file",
    ]


def test_a_file_that_is_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError) as exc:
        topology(tmp_path, "- s1\n")
    assert problems(exc) == [f"{tmp_path / 't.yaml'}:1: expected a mapping with switches, hosts and links"]
