"""The JSON views of the controller's state that the API and the CLI show. They read the
core's ledger and change nothing."""

from __future__ import annotations

from .core.directory import Host, normalize_mac
from .core.ledger import Ledger


def host_state(ledger: Ledger, name: str, mac: str) -> str:
    if name in ledger.quarantined or any(e.mac == mac for e in ledger.quarantined.values()):
        return "quarantined"
    return "authenticated" if mac in ledger.bindings.by_mac else "unknown"


def host_view(ledger: Ledger, host: Host) -> dict:
    binding = ledger.bindings.by_mac.get(host.mac)
    return {
        "name": host.name,
        "mac": host.mac,
        "ip": ledger.bound_ip(host),
        "labels": dict(host.labels),
        "location": {"dpid": binding.dpid, "port": binding.port} if binding else None,
        "state": host_state(ledger, host.name, host.mac),
        "pin": {"dpid": host.switch, "port": host.port} if host.switch is not None else None,
    }


def hosts_view(ledger: Ledger) -> list[dict]:
    """Every directory host, then every device the directory does not know that was seen."""
    views = [host_view(ledger, host) for host in ledger.directory]
    for stranger in ledger.strangers.values():
        if ledger.directory.lookup_mac(stranger["mac"]) is not None:
            continue  # named by the directory since: listed above
        views.append(
            {
                "name": None,
                "mac": stranger["mac"],
                "ip": stranger["ip"],
                "labels": {},
                "location": {"dpid": stranger["dpid"], "port": stranger["port"]},
                "state": host_state(ledger, stranger["mac"], stranger["mac"]),
                "last_seen": stranger["last_seen"],
            }
        )
    return views


def find_host_view(ledger: Ledger, name_or_mac: str) -> dict | None:
    host = ledger.directory.find(name_or_mac)
    if host is not None:
        return host_view(ledger, host)
    mac = normalize_mac(name_or_mac)
    return next((v for v in hosts_view(ledger) if v["name"] is None and v["mac"] == mac), None)


def connections_view(ledger: Ledger) -> list[dict]:
    return [c.to_json() for c in ledger.connections]


def quarantine_view(ledger: Ledger) -> list[dict]:
    return [e.to_json() for e in ledger.quarantined.values()]
