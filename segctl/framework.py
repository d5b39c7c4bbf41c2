"""The one door to the OpenFlow framework: Ryu 4.34, or its maintained fork os-ken.

Ryu 4.34 imports `eventlet.wsgi.ALREADY_HANDLED`, which current eventlet no longer has. It is
defined here, before the first framework import, and nowhere else. Every other segctl module
imports framework names from this module only.
"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")

import eventlet.wsgi  # noqa: E402

if not hasattr(eventlet.wsgi, "ALREADY_HANDLED"):
    eventlet.wsgi.ALREADY_HANDLED = object()

try:  # noqa: E402
    from ryu import cfg
    from ryu.base import app_manager
    from ryu.controller import ofp_event
    from ryu.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
    from ryu.lib import hub
    from ryu.ofproto import ofproto_parser, ofproto_v1_3, ofproto_v1_3_parser  # noqa: F401 (re-exported)

    FRAMEWORK = "ryu"
except ImportError:  # pragma: no cover - exercised only where os-ken replaces Ryu
    from os_ken import cfg
    from os_ken.base import app_manager
    from os_ken.controller import ofp_event
    from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
    from os_ken.lib import hub
    from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

    FRAMEWORK = "os_ken"


class _UnreadFlowStats:
    """What Ryu keeps of one flow-stats record: its length. Ryu builds a full object per record
    (match, instructions), which for a switch holding thousands of entries stalls every
    packet-in queued behind the reply; segctl decodes the records itself (segctl.ofmsg) from the
    reply's bytes, part by part."""

    __slots__ = ("length",)

    def __init__(self, length: int):
        self.length = length

    @classmethod
    def parser(cls, buf, offset):
        return cls(int.from_bytes(buf[offset : offset + 2], "big"))


ofproto_v1_3_parser.OFPFlowStatsReply.cls_stats_body_cls = _UnreadFlowStats


def run_blocking(function, *args):
    """Run blocking code (an LDAP read) in an OS thread, so the event loop keeps serving
    switches meanwhile. Both frameworks run on eventlet."""
    from eventlet import tpool

    return tpool.execute(function, *args)


def tls_server_context(cert: str, key: str, ca: str | None = None):
    """A TLS 1.2+ server context (eventlet's green one); with `ca`, clients must present a
    certificate signed by it (mutual authentication)."""
    from eventlet.green import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(ca)
    return context


def listen(host: str, port: int):
    """A listening socket, bound now: a port in use fails here, loudly, before anything says it
    is listening."""
    import eventlet

    return eventlet.listen((host, port))


def serve_openflow_tls(server, context, log) -> None:
    """Accept OpenFlow switches over TLS on `server` (from listen()) and hand each to the
    framework like a TCP one. (Ryu's own TLS listener loses its certificate after the first
    switch connects.)"""
    try:
        from ryu.controller.controller import datapath_connection_factory
    except ImportError:  # pragma: no cover - os-ken
        from os_ken.controller.controller import datapath_connection_factory

    def handshake(sock, address):
        try:
            tls = context.wrap_socket(sock, server_side=True)
        except OSError as exc:  # ssl.SSLError included: a bad or missing client certificate
            log.warning("OpenFlow TLS handshake with %s:%d refused: %s", address[0], address[1], exc)
            sock.close()
            return
        datapath_connection_factory(tls, address)

    while True:
        sock, address = server.accept()
        hub.spawn(handshake, sock, address)


def serve_wsgi(server, application, context=None) -> None:
    """Serve a WSGI application on `server` (from listen()), over TLS when a server context
    is given."""
    import eventlet.wsgi

    if context is not None:
        server = context.wrap_socket(server, server_side=True)
    # debug=False: should an error ever escape the application, eventlet answers without a traceback.
    eventlet.wsgi.server(server, application, log_output=False, debug=False)


__all__ = [
    "tls_server_context",
    "serve_openflow_tls",
    "serve_wsgi",
    "listen",
    "run_blocking",
    "cfg",
    "app_manager",
    "ofp_event",
    "CONFIG_DISPATCHER",
    "DEAD_DISPATCHER",
    "MAIN_DISPATCHER",
    "set_ev_cls",
    "hub",
    "ofproto_v1_3",
    "ofproto_v1_3_parser",
    "FRAMEWORK",
]
