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


__all__ = [
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
