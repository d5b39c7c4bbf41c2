"""What a new directory and policy keep of the running state: the tests a reload applies
(Controller.reload) and a dry run counts (`reload?dry_run=true`), written once.

A binding stays while its host is still in the directory, allowed where it is attached and at
the address it uses; a connection stays while both ends keep their bindings and the new policy
(its modes included) still forwards it.
"""

from __future__ import annotations

from collections.abc import Collection

from .bindings import Binding
from .connections import Connection
from .decision import DecisionIndex, Outcome
from .directory import Directory, Host
from .ledger import Ledger
from .policy import Policy


def binding_kept(directory: Directory, binding: Binding) -> Host | None:
    """The binding's host as the new directory has it, or None when the binding must go."""
    host = directory.lookup_mac(binding.host.mac)
    if host is None or not host.may_attach_at(binding.dpid, binding.port):
        return None
    if host.ip and binding.ip and host.ip != binding.ip:
        return None
    return host


def connection_kept(
    directory: Directory, index: DecisionIndex, bound: Collection[str], connection: Connection
) -> tuple[Host, Host, Outcome] | None:
    """(source, destination, outcome) for a connection the new state still forwards between two
    hosts whose MACs are in `bound`; None when it must be revoked."""
    key = connection.key
    src, dst = directory.lookup_mac(key.src_mac), directory.lookup_mac(key.dst_mac)
    if src is None or dst is None or src.mac not in bound or dst.mac not in bound:
        return None
    outcome = index.outcome(src.labels, dst.labels, key.proto_name, key.service_port)
    return (src, dst, outcome) if outcome.forwarded else None


def would_revoke(ledger: Ledger, directory: Directory, policy: Policy) -> int:
    """How many of the ledger's connections a reload to `directory` and `policy` would revoke."""
    index = DecisionIndex(policy)
    bound = {mac for mac, binding in ledger.bindings.by_mac.items() if binding_kept(directory, binding)}
    return sum(connection_kept(directory, index, bound, connection) is None for connection in ledger.connections)
