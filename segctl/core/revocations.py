"""Revoking many connections at once (a reload): the deletes of all their entries on every switch
of their paths, in as few messages as the connections that stay allow.

One revoked connection takes one FlowDelete per switch (planner.plan_revoke): its cookie under
CONNECTION_MASK. A reload may revoke thousands, and one delete each would cost the controller
and the switches a message per connection per switch. Instead, on each switch:

- no connection that stays crosses it: one delete of every connection's entries there
  (`connections_cookie`);
- else, for a client (the host id in the cookie) none of whose connections that stay crosses
  it: one delete of that client's connections' entries there (`CLIENT_MASK`: magic, the
  connection-scoped bit and the host id);
- else: the connection's own delete.

Exact either way: a connection's entries (every band, later fragments and server-side drops
included) are on the switches of its path and carry its cookie, so each delete takes entries of
revoked connections only (and any stale connection entry of the switch's), never one of a
connection that stays.
"""

from __future__ import annotations

from collections.abc import Iterable

from .connections import Connection
from .flows import Barrier, FlowDelete
from .pipeline import CONNECTION_ID_LIMIT, CONNECTION_MASK, connection_cookie, connections_cookie

CLIENT_MASK = CONNECTION_MASK & ~(CONNECTION_ID_LIMIT - 1)


def plan_revocations(revoked: Iterable[Connection], staying: Iterable[Connection]) -> list[FlowDelete | Barrier]:
    """The deletes of every entry of the `revoked` connections, then a barrier per switch;
    `staying` are all the live connections that keep theirs."""
    revoked = list(revoked)
    if not revoked:
        return []  # (no need to look at the staying ones)
    busy: set[int] = set()  # switches a staying connection crosses
    busy_clients: set[tuple[int, int]] = set()  # (switch, client's cookie bits) of those
    for connection in staying:
        client = connection.cookie & CLIENT_MASK
        for hop in connection.path:
            busy.add(hop.dpid)
            busy_clients.add((hop.dpid, client))
    every, every_mask = connections_cookie()
    deletes: dict[tuple[int, int, int], None] = {}  # (switch, cookie, mask), in order, once each
    for connection in revoked:
        cookie = connection.cookie
        client = cookie & CLIENT_MASK
        for hop in connection.path:
            dpid = hop.dpid
            if dpid not in busy:
                deletes[(dpid, every, every_mask)] = None
            elif (dpid, client) not in busy_clients:
                deletes[(dpid, client, CLIENT_MASK)] = None
            else:
                deletes[(dpid, *connection_cookie(cookie))] = None
    messages: list[FlowDelete | Barrier] = [FlowDelete(*delete) for delete in deletes]
    messages += [Barrier(dpid) for dpid in dict.fromkeys(dpid for dpid, _, _ in deletes)]
    return messages
