"""Lab topology files: switches (with datapath ids), hosts on switch ports, switch links."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from segctl.core.directory import Directory, normalize_mac
from segctl.core.errors import Problems
from segctl.core.yamlsrc import LDict, LList, load_yaml_file


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


def load_topology(path: str, directory: Directory) -> LabTopology:
    """Read a topology file; a host's MAC and IP come from the directory unless given."""
    data = load_yaml_file(path)
    problems = Problems(path)
    if not isinstance(data, LDict):
        problems.add(1, "expected a mapping with switches, hosts and links")
        problems.raise_if_any()
    for key in data:
        if key not in ("name", "switches", "hosts", "links"):
            problems.add(data.line_of(key), f"unknown key {key!r}")
    switches: dict[str, int] = {}
    raw_switches = data.get("switches")
    if not isinstance(raw_switches, LDict) or not raw_switches:
        problems.add(data.line_of("switches"), "'switches' must map names to {dpid: N}")
        raw_switches = LDict()
    for name, entry in raw_switches.items():
        dpid = entry.get("dpid") if isinstance(entry, dict) else None
        if not isinstance(dpid, int) or dpid <= 0:
            problems.add(raw_switches.line_of(name), f"switch {name}: dpid must be a positive number")
            continue
        switches[name] = dpid
    hosts = []
    used_ports = set()
    raw_hosts = data.get("hosts") or LDict()
    for name, entry in raw_hosts.items():
        line = raw_hosts.line_of(name)
        if not isinstance(entry, dict) or entry.get("switch") not in switches:
            problems.add(line, f"host {name}: 'switch' must name a switch of this file")
            continue
        port = entry.get("port")
        if not isinstance(port, int) or port < 1 or (entry["switch"], port) in used_ports:
            problems.add(line, f"host {name}: 'port' must be a free port number")
            continue
        used_ports.add((entry["switch"], port))
        known = directory.by_name.get(name)
        mac = normalize_mac(str(entry.get("mac") or (known.mac if known else "")))
        ip = entry.get("ip") or (known.ip if known else None)
        if mac is None or ip is None:
            problems.add(line, f"host {name}: not in the directory, so give it 'mac' and 'ip'")
            continue
        try:
            ip = str(ipaddress.IPv4Address(str(ip)))
        except ValueError:
            problems.add(line, f"host {name}: {ip!r} is not an IPv4 address")
            continue
        hosts.append(LabHost(name, entry["switch"], port, mac, ip))
    links = []
    raw_links = data.get("links") or LList()
    for position, link in enumerate(raw_links):
        if not (isinstance(link, list) and len(link) == 2 and all(s in switches for s in link)):
            problems.add(raw_links.line_of(position), "a link is [switch, switch] of this file")
            continue
        links.append(tuple(link))
    problems.raise_if_any()
    return LabTopology(str(data.get("name", path)), switches, tuple(hosts), tuple(links))
