"""What a reload would revoke, counted without changing anything (`reload?dry_run=true`).

The same tests as Controller.reload: a binding whose host left the directory, moved off its
pin or changed address goes, and with it its connections; any other connection stays only
while both ends are still in the directory and the new policy still forwards it.
"""

from __future__ import annotations

from .decision import DecisionIndex
from .directory import Directory
from .ledger import Ledger
from .policy import Policy


def would_revoke(ledger: Ledger, directory: Directory, policy: Policy) -> int:
    """How many of the ledger's connections a reload to `directory` and `policy` would revoke."""
    index = DecisionIndex(policy)
    kept_bindings = set()
    for mac, binding in ledger.bindings.by_mac.items():
        host = directory.lookup_mac(binding.host.mac)
        if (
            host is not None
            and host.may_attach_at(binding.dpid, binding.port)
            and not (host.ip and binding.ip and host.ip != binding.ip)
        ):
            kept_bindings.add(mac)
    revoked = 0
    for connection in ledger.connections:
        src = directory.lookup_mac(connection.key.src_mac)
        dst = directory.lookup_mac(connection.key.dst_mac)
        kept = (
            src is not None
            and dst is not None
            and src.mac in kept_bindings
            and dst.mac in kept_bindings
            and index.outcome(src.labels, dst.labels, connection.key.proto_name, connection.key.service_port).forwarded
        )
        revoked += not kept
    return revoked
