"""Lab topology files: switches (with datapath ids), hosts on switch ports, switch links."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segctl.core.directory import Directory, normalize_mac
from segctl.core.errors import Problems
from segctl.core.sections import Section
from segctl.core.yamlsrc import load_yaml_file

_HOST_KEYS = {"switch", "port", "mac", "ip"}


@dataclass(frozen=True)
class LabHost:
    name: str
    switch: str
    port: int
    mac: str
    ip: str


@dataclass(frozen=True)
class LabTopology:
    name: str
    switches: dict  # switch name -> dpid
    hosts: tuple  # LabHost, in file order
    links: tuple  # (switch name, switch name)

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)


_MAC_HINT = ' (write it quoted, like "02:00:00:00:01:01")'


def _switches(top: Section) -> dict[str, int]:
    """Switch name -> datapath id. Mininet takes 0 for no id at all, so ids start at 1."""
    switches: dict[str, int] = {}
    shape = "'switches' must map names to {dpid: N}"
    section = top.child("switches", name="", expected=shape, required=True)
    if section.ok and "switches" in top and not list(section):
        top.problem("switches", shape)
    for name in section:
        entry = section.child(
            name, name=f"switch {name}", allowed={"dpid"}, expected=f"switch {name}: expected {{dpid: N}}"
        )
        dpid = entry.dpid("dpid", required=True)
        if dpid == 0:
            entry.problem("dpid", "dpid must be a positive number")
        elif dpid is not None:
            switches[name] = dpid
    return switches


def _host(hosts: Section, name: str, switches: dict[str, int], directory: Directory, taken: dict) -> LabHost | None:
    """The host `name` of the file; its MAC and IP from the directory unless given."""
    before = len(hosts.problems.items)
    entry = hosts.child(
        name, name=f"host {name}", allowed=_HOST_KEYS, expected=f"host {name}: expected {{switch: S, port: N}}"
    )
    entry.require("switch", "port")
    switch = entry.choice("switch", switches)
    port = entry.port("port")
    if (switch, port) in taken:
        entry.problem("port", f"port {port} of {switch} is taken by {taken[switch, port]}")
    known = directory.by_name.get(name)
    mac = entry.host_mac("mac", normalize_mac, hint=_MAC_HINT) or (known.mac if known else None)
    ip = entry.ipv4("ip") or (known.ip if known else None)
    if (mac is None and "mac" not in entry) or (ip is None and "ip" not in entry):
        entry.problem_at(entry.line, "not in the directory, so give it 'mac' and 'ip'")
    if len(hosts.problems.items) != before:
        return None
    taken[switch, port] = name
    return LabHost(name, switch, port, mac, ip)


def _is_switch(name: Any, switches: dict) -> bool:
    return not isinstance(name, (dict, list)) and name in switches


def load_topology(path: str, directory: Directory) -> LabTopology:
    """Read a topology file; a host's MAC and IP come from the directory unless given."""
    problems = Problems(path)
    top = Section.read(
        load_yaml_file(path),
        problems,
        line=1,
        expected="expected a mapping with switches, hosts and links",
        allowed={"name", "switches", "hosts", "links"},
    )
    switches = _switches(top)
    hosts, taken = [], {}
    section = top.child("hosts", name="")
    for name in section:
        host = _host(section, name, switches, directory, taken)
        if host is not None:
            hosts.append(host)
    links = []
    for line, link in top.items("links"):
        if not (isinstance(link, list) and len(link) == 2 and all(_is_switch(s, switches) for s in link)):
            top.problem_at(line, "a link is [switch, switch] of this file")
            continue
        links.append(tuple(link))
    problems.raise_if_any()
    return LabTopology(str(top.get("name", path)), switches, tuple(hosts), tuple(links))
