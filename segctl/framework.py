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
    from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser

    FRAMEWORK = "ryu"
except ImportError:  # pragma: no cover - exercised only where os-ken replaces Ryu
    from os_ken import cfg
    from os_ken.base import app_manager
    from os_ken.controller import ofp_event
    from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
    from os_ken.lib import hub
    from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

    FRAMEWORK = "os_ken"


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


def serve_openflow_tls(host: str, port: int, context, log) -> None:
    """Accept OpenFlow switches over TLS and hand each to the framework like a TCP one.
    (Ryu's own TLS listener loses its certificate after the first switch connects.)"""
    import eventlet

    try:
        from ryu.controller.controller import datapath_connection_factory
    except ImportError:  # pragma: no cover - os-ken
        from os_ken.controller.controller import datapath_connection_factory

    server = eventlet.listen((host, port))

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


def serve_wsgi(host: str, port: int, application, context=None) -> None:
    """Serve a WSGI application, over TLS when a server context is given."""
    import eventlet
    import eventlet.wsgi

    sock = eventlet.listen((host, port))
    if context is not None:
        sock = context.wrap_socket(sock, server_side=True)
    eventlet.wsgi.server(sock, application, log_output=False)


__all__ = [
    "tls_server_context",
    "serve_openflow_tls",
    "serve_wsgi",
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
