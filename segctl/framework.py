"""The one door to the OpenFlow framework: Ryu 4.34 (the default) or its maintained fork os-ken
4.2. Every other segctl module imports framework names from this module only.

Which one: SEGCTL_FRAMEWORK=ryu or SEGCTL_FRAMEWORK=os-ken picks it (and fails at once if that
one is not installed); unset, Ryu if it is installed, else os-ken.

What differs between the two, hidden here:
- the app base class: `App` (Ryu's RyuApp, os-ken's OSKenApp);
- the package (`PACKAGE`: "ryu" or "os_ken"), which names the oslo.config project and the loggers;
- Ryu 4.34 imports `eventlet.wsgi.ALREADY_HANDLED`, which current eventlet no longer has: it is
  defined here, before Ryu is imported, and nowhere else;
- os-ken 4.2's hub runs on OS threads unless OSKEN_HUB_TYPE says eventlet. segctl is built on
  eventlet's green threads (its API server, TLS listener and LDAP reads are eventlet's, and the
  framework's handlers and the API take turns on one OS thread), so OSKEN_HUB_TYPE is set to
  eventlet here, before os-ken is imported.
"""

from __future__ import annotations

import collections
import importlib.util
import logging
import os
import struct
import threading
import warnings
from importlib.metadata import version

warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")

PACKAGES = {"ryu": "ryu", "os-ken": "os_ken"}  # SEGCTL_FRAMEWORK value: Python package


class FrameworkMissing(ImportError):
    """The framework SEGCTL_FRAMEWORK names is not installed, or none is."""


def choose(wanted: str = "") -> str:
    """The framework to run on, "ryu" or "os-ken": `wanted` (SEGCTL_FRAMEWORK's value) if it
    names one that is installed; none wanted, Ryu if installed, else os-ken."""
    wanted = wanted.strip()
    if wanted:
        if wanted not in PACKAGES:
            raise FrameworkMissing(f"SEGCTL_FRAMEWORK is ryu or os-ken, not {wanted!r}")
        if importlib.util.find_spec(PACKAGES[wanted]) is None:
            raise FrameworkMissing(f"SEGCTL_FRAMEWORK={wanted}, but {wanted} is not installed")
        return wanted
    for name, package in PACKAGES.items():
        if importlib.util.find_spec(package) is not None:
            return name
    raise FrameworkMissing("segctl needs Ryu 4.34 or os-ken 4.2, and neither is installed")


FRAMEWORK = choose(os.environ.get("SEGCTL_FRAMEWORK", ""))
PACKAGE = PACKAGES[FRAMEWORK]
VERSION = version(FRAMEWORK)

if FRAMEWORK == "ryu":
    import eventlet.wsgi

    if not hasattr(eventlet.wsgi, "ALREADY_HANDLED"):
        eventlet.wsgi.ALREADY_HANDLED = object()

    from ryu import cfg
    from ryu.base import app_manager
    from ryu.controller import ofp_event
    from ryu.controller.controller import datapath_connection_factory
    from ryu.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
    from ryu.lib import hub
    from ryu.ofproto import ofproto_parser, ofproto_v1_3, ofproto_v1_3_parser  # noqa: F401 (re-exported)

    _FrameworkApp = app_manager.RyuApp
else:
    os.environ["OSKEN_HUB_TYPE"] = "eventlet"  # read by os_ken.lib.hub when it is imported

    from os_ken import cfg
    from os_ken.base import app_manager
    from os_ken.controller import ofp_event
    from os_ken.controller.controller import datapath_connection_factory
    from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
    from os_ken.lib import hub
    from os_ken.ofproto import ofproto_parser, ofproto_v1_3, ofproto_v1_3_parser  # noqa: F401 (re-exported)

    _FrameworkApp = app_manager.OSKenApp

from eventlet.greenio import GreenSocket

LOG = logging.getLogger("segctl.framework")


class App(_FrameworkApp):  # type: ignore[misc,valid-type]
    """The framework's application base class, with the events it observes handled at once,
    in the green thread that sends them (for a switch's messages, the one reading that switch),
    rather than queued for the application's own event thread: no queue, no semaphore and no
    switch to another green thread per packet-in.

    What the queue guaranteed still holds: one handler at a time (a handler waiting to write to
    a switch holds the others back, as it held the event thread), each switch's events in the
    order it sent them, and a handler's exception logged, not raised into the framework (which
    would drop the switch). A handler must not wait for a switch's answer (none does: the
    runtime's confirmations wait in the API's green threads)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._one_handler = hub.Semaphore(1)
        self._handling = None  # the green thread running handlers now
        self._sent_meanwhile: collections.deque = collections.deque()  # by a handler, for after it

    def _send_event(self, ev, state):
        if ev is self._event_stop:
            super()._send_event(ev, state)
            return
        current = hub.getcurrent()
        if self._handling is current:  # sent by a handler: handled when it is done, as if queued
            self._sent_meanwhile.append((ev, state))
            return
        with self._one_handler:
            self._handling = current
            try:
                self._handle(ev, state)
                while self._sent_meanwhile:
                    self._handle(*self._sent_meanwhile.popleft())
            finally:
                self._handling = None
                self._sent_meanwhile.clear()

    def _handle(self, ev, state) -> None:
        for handler in self.get_handlers(ev, state):
            try:
                handler(ev)
            except hub.TaskExit:
                raise
            except Exception:  # noqa: BLE001 - as the framework's event loop: logged, the next one runs
                LOG.exception("%s: handler %s failed on %s", self.name, handler.__name__, ev.__class__.__name__)


class _UnreadFlowStats:
    """What the framework keeps of one flow-stats record: its length. It would build a full
    object per record (match, instructions), which for a switch holding thousands of entries
    stalls every packet-in queued behind the reply; segctl decodes the records itself
    (segctl.ofmsg) from the reply's bytes, part by part."""

    __slots__ = ("length",)

    def __init__(self, length: int):
        self.length = length

    @classmethod
    def parser(cls, buf, offset):
        return cls(int.from_bytes(buf[offset : offset + 2], "big"))


ofproto_v1_3_parser.OFPFlowStatsReply.cls_stats_body_cls = _UnreadFlowStats


# -- the first packet, fast ------------------------------------------------------------------
# Every new connection is a PACKET_IN, and the framework's parser builds a message object, a
# match object and an object per match field (twice: its old and new match APIs) for it, while
# segctl reads only the input port and the packet. install_fast_paths() replaces that parser
# with one reading both straight from the bytes, for the match fields it can prove the
# framework would parse the same (see _plain_fields); anything else goes to the framework's
# own parser, so what reaches the handler, or what is refused, is the framework's decision.
_PACKET_IN_HEAD = struct.Struct("!IHBBQHH")  # buffer_id, total_len, reason, table_id, cookie; match type, length
_OXM_HEADER = struct.Struct("!I")
_MATCH_AT = 24  # the match's offset in a PACKET_IN
_OXM_IN_PORT = ofproto_v1_3.OXM_OF_IN_PORT
_framework_packet_in_parser = ofproto_v1_3_parser.OFPPacketIn.parser


def _plain_fields() -> frozenset:
    """The OXM headers (OpenFlow basic class, as registered with the framework's old match API)
    whose fields the framework parses whatever their value: one of each, zero-valued, through
    its own match parser. A match made of these only, filling its length exactly, is one the
    framework would parse without complaint."""
    plain = set()
    for header in ofproto_v1_3_parser.OFPMatchField._FIELDS_HEADERS:
        if header >> 16 != ofproto_v1_3.OFPXMC_OPENFLOW_BASIC:
            continue
        field = _OXM_HEADER.pack(header) + bytes(header & 0xFF)
        match = struct.pack("!HH", ofproto_v1_3.OFPMT_OXM, 4 + len(field)) + field
        try:
            ofproto_v1_3_parser.OFPMatch.parser(match, 0)
        except Exception:  # noqa: BLE001 - the framework refuses this one: not plain
            continue
        plain.add(header)
    return frozenset(plain)


_PLAIN_FIELDS = _plain_fields()


class OFPPacketIn(ofproto_v1_3_parser.OFPPacketIn):
    """A PACKET_IN as the handler sees it: the framework's message (same class name, so the
    same event class), with `in_port` (None: the match has none) and `data` read from the
    bytes, and `match` built from them only if something asks for it."""

    @classmethod
    def parser(cls, datapath, version, msg_type, msg_len, xid, buf):
        buf = bytes(buf)
        size = len(buf)
        if size < _MATCH_AT + 4:
            return cls._framework_parse(datapath, version, msg_type, msg_len, xid, buf)
        buffer_id, total_len, reason, table_id, cookie, _, match_len = _PACKET_IN_HEAD.unpack_from(buf, 8)
        end = _MATCH_AT + match_len
        if match_len < 4 or end > size:
            return cls._framework_parse(datapath, version, msg_type, msg_len, xid, buf)
        in_port = None
        at = _MATCH_AT + 4
        while at < end:
            if at + 4 > end:
                return cls._framework_parse(datapath, version, msg_type, msg_len, xid, buf)
            header = (buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]
            if header not in _PLAIN_FIELDS:
                return cls._framework_parse(datapath, version, msg_type, msg_len, xid, buf)
            if header == _OXM_IN_PORT:
                in_port = int.from_bytes(buf[at + 4 : at + 8], "big")  # (the last one, as the framework's get)
            at += 4 + (header & 0xFF)
        if at != end:
            return cls._framework_parse(datapath, version, msg_type, msg_len, xid, buf)
        msg = cls.__new__(cls)
        msg.datapath, msg.version, msg.msg_type, msg.msg_len, msg.xid, msg.buf = (
            datapath, version, msg_type, msg_len, xid, buf
        )  # fmt: skip
        msg.buffer_id, msg.total_len, msg.reason, msg.table_id, msg.cookie = (
            buffer_id, total_len, reason, table_id, cookie
        )  # fmt: skip
        data = buf[_MATCH_AT + (match_len + 7) // 8 * 8 + 2 :]
        msg.data = data[:total_len] if total_len < len(data) else data
        msg.in_port = in_port
        return msg

    @staticmethod
    def _framework_parse(datapath, version, msg_type, msg_len, xid, buf):
        msg = _framework_packet_in_parser(datapath, version, msg_type, msg_len, xid, buf)
        msg.in_port = msg.match.get("in_port")
        return msg

    @property
    def match(self):
        match = self.__dict__.get("_match")
        if match is None:
            match = self._match = ofproto_v1_3_parser.OFPMatch.parser(self.buf, _MATCH_AT)
        return match

    @match.setter
    def match(self, match):
        self._match = match


class _SwitchSocket:
    """A switch's socket as the framework sees it, wrapped (wrap_socket):

    - read ahead: the framework's receiving loop asks for each message's 8-byte header, then
      for the rest, two reads through eventlet per message; here one read takes whatever the
      switch has sent (up to READ_AHEAD bytes) and the loop's asks are served from it;
    - its writer watched: whether the framework's writing green thread is inside a write,
      so that write() knows when it may write straight to the socket;
    - taking turns: a switch answered at once (write) may have sent more before its reading
      green thread is done, and that thread would then never wait and never let the others
      run; so it yields before each read of the socket, as it did when its answers went out
      only once it yielded.

    Everything else is the socket's own."""

    __slots__ = ("_socket", "_data", "_at", "_raw", "_writing", "_written")
    READ_AHEAD = 65536

    def __init__(self, sock) -> None:
        self._socket = sock
        self._data = b""
        self._at = 0
        # The plain non-blocking socket under eventlet's (none under TLS: writes go the framework's way).
        self._raw = sock.fd if isinstance(sock, GreenSocket) else None
        self._writing = False  # the framework's writer is in sendall
        self._written = False  # it has been through sendall once since the wrap (none from before is left)

    def recv(self, size: int) -> bytes:
        data, at = self._data, self._at
        if at >= len(data):
            data = self._read(max(size, self.READ_AHEAD))
            if len(data) <= size:
                return data
            self._data, at = data, 0
        self._at = at + size
        return data[at : at + size]

    def _read(self, size: int) -> bytes:
        raw = self._raw
        if raw is not None:
            hub.sleep(0)  # the others' turn
            try:
                return raw.recv(size)  # what is there, if anything
            except BlockingIOError:
                pass
        return self._socket.recv(size)  # waits (green) for it

    def sendall(self, data) -> None:
        self._writing = True
        try:
            self._socket.sendall(data)
        finally:
            self._writing = False
            self._written = True

    def write_now(self, datapath, data) -> int:
        """Write what the socket takes at once, if the framework's writer is idle with nothing
        queued (else nothing); how many bytes went."""
        queue = getattr(datapath, "send_q", None)
        if self._raw is None or not self._written or self._writing or queue is None or not queue.empty():
            return 0
        try:
            return self._raw.send(data)
        except OSError:  # BlockingIOError included; a broken connection is the framework's to see
            return 0

    def __getattr__(self, name: str):
        return getattr(self._socket, name)


def wrap_socket(datapath) -> None:
    """Wrap the switch's socket (_SwitchSocket). Safe at any time: the framework's receiving
    loop holds nothing it read beyond the message it asked for, and a write of its writer
    started before is waited for before write() writes straight to the socket."""
    sock = getattr(datapath, "socket", None)
    if sock is not None and not isinstance(sock, _SwitchSocket):
        datapath.socket = _SwitchSocket(sock)


def more_to_read(datapath) -> bool:
    """Whether bytes the switch sent are already read and not yet handed to the framework: its
    next messages are about to be handled."""
    sock = getattr(datapath, "socket", None)
    return isinstance(sock, _SwitchSocket) and sock._at < len(sock._data)


def write(datapath, data: bytes | bytearray) -> None:
    """Send bytes to the switch: straight to its socket when the framework has nothing of its
    own on the way there (no queue, no switch to its writing green thread); else, and what the
    socket does not take at once, through the framework's queue, behind what is in it."""
    sock = getattr(datapath, "socket", None)
    if isinstance(sock, _SwitchSocket):
        sent = sock.write_now(datapath, data)
        if sent == len(data):
            return
        data = data[sent:]
    datapath.send(data)


def install_fast_paths() -> None:
    """segctl's own ways through the framework, for its process only (a stock application run
    with this module, the benchmark's baseline, keeps the framework's): PACKET_INs parsed by
    OFPPacketIn above."""
    ofproto_v1_3_parser._MSG_PARSERS[ofproto_v1_3.OFPT_PACKET_IN] = OFPPacketIn.parser


# How much nicer than the controller an OS thread of run_blocking is (Linux: a thread's own nice
# value). Its work (the flow store's writes, LDAP reads, maps and suggestions) can wait; the
# switches' event loop should not wait for a core while it runs: on a 2-core machine the flow
# store's writes alone, at normal priority, put 1 ms on the p99 of flow setups in latency mode
# (bench.flowsetup: 5.2-5.7 against 4.3-4.5 ms at nice 15).
BACKGROUND_NICENESS = 15
_background_threads: set[int] = set()


def run_blocking(function, *args):
    """Run blocking code (an LDAP read, a flow store write) in an OS thread at a lower CPU
    priority, so the event loop keeps serving switches meanwhile. Both frameworks run on eventlet."""
    from eventlet import tpool

    return tpool.execute(in_background, function, *args)


def in_background(function, *args):
    """function(*args), the calling OS thread made BACKGROUND_NICENESS nicer first (once)."""
    thread = threading.get_native_id()
    if thread not in _background_threads:
        _background_threads.add(thread)
        try:
            nice = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, min(19, nice + BACKGROUND_NICENESS))
        except OSError as exc:  # (not permitted, say: the work still runs)
            LOG.debug("background thread %d keeps its priority: %s", thread, exc)
    return function(*args)


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
    "App",
    "install_fast_paths",
    "wrap_socket",
    "more_to_read",
    "write",
    "choose",
    "FrameworkMissing",
    "PACKAGE",
    "VERSION",
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
