"""segctl's fast ways through the framework (segctl/framework.py: install_fast_paths) give what
the framework's own would: a PACKET_IN read straight from its bytes has the input port, packet
and header fields the framework's parser gives, for any match; whatever the framework refuses
(or disconnects the switch for) is refused the same way."""

from __future__ import annotations

import importlib
import logging
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segctl import framework

ofp = framework.ofproto_v1_3
parser = framework.ofproto_v1_3_parser
ofproto_parser = framework.ofproto_parser
PLAIN = sorted(framework._PLAIN_FIELDS)
IN_PORT = ofp.OXM_OF_IN_PORT


@pytest.fixture(autouse=True)
def _quiet_framework(caplog):
    """The framework logs each message it refuses, with its bytes; nothing to see here."""
    caplog.set_level(logging.CRITICAL, logger=f"{framework.PACKAGE}.ofproto.ofproto_parser")


def fast(buf: bytes):
    framework.install_fast_paths()
    return ofproto_parser.msg(None, *ofproto_parser.header(buf), bytearray(buf))


def framework_own(buf: bytes):
    """The framework's parser, as it runs without segctl's (monkeypatch-free: put back after)."""
    parsers = parser._MSG_PARSERS
    ours = parsers[ofp.OFPT_PACKET_IN]
    parsers[ofp.OFPT_PACKET_IN] = framework._framework_packet_in_parser
    try:
        return ofproto_parser.msg(None, *ofproto_parser.header(buf), bytearray(buf))
    finally:
        parsers[ofp.OFPT_PACKET_IN] = ours


def outcome(parse, buf: bytes, in_port_of) -> tuple:
    """What the controller gets: the fields segctl and a reader of the message see, or that
    the message was dropped (None), or the exception that ends the switch's connection."""
    try:
        msg = parse(buf)
    except Exception as exc:  # noqa: BLE001 - compared: the same exception either way
        return ("raises", type(exc).__name__)
    if msg is None:
        return ("dropped",)
    assert type(msg).__name__ == "OFPPacketIn"
    assert isinstance(framework.ofp_event.ofp_msg_to_ev(msg), framework.ofp_event.EventOFPPacketIn)
    head = (msg.version, msg.msg_type, msg.msg_len, msg.xid, bytes(msg.buf))
    fields = (msg.buffer_id, msg.total_len, msg.reason, msg.table_id, msg.cookie, msg.match.items())
    return ("parsed", in_port_of(msg), bytes(msg.data), head, fields, msg.match.length)


def same_outcome(buf: bytes) -> tuple:
    ours = outcome(fast, buf, lambda msg: msg.in_port)
    theirs = outcome(framework_own, buf, lambda msg: msg.match.get("in_port"))
    assert ours == theirs
    return ours


def tlv(header: int, value: bytes | None = None) -> bytes:
    return struct.pack("!I", header) + (bytes(header & 0xFF) if value is None else value)


def packet_in(
    fields: bytes,
    data: bytes = b"\x00" * 60,
    buffer_id: int = ofp.OFP_NO_BUFFER,
    total_len: int | None = None,
    reason: int = ofp.OFPR_NO_MATCH,
    table_id: int = 0,
    cookie: int = 0,
    xid: int = 0,
    match_length: int | None = None,
) -> bytes:
    length = 4 + len(fields) if match_length is None else match_length
    match = struct.pack("!HH", ofp.OFPMT_OXM, length) + fields
    match += bytes(-len(match) % 8)
    total = len(data) if total_len is None else total_len
    body = struct.pack("!IHBBQ", buffer_id, total, reason, table_id, cookie) + match + b"\0\0" + data
    return struct.pack("!BBHI", ofp.OFP_VERSION, ofp.OFPT_PACKET_IN, 8 + len(body), xid) + body


# -- as the framework, for every match --------------------------------------------------------
def test_a_plain_packet_in_gives_the_port_and_the_packet():
    data = bytes(range(64))
    msg = fast(packet_in(tlv(IN_PORT, struct.pack("!I", 7)), data))
    assert type(msg) is framework.OFPPacketIn
    assert (msg.in_port, msg.data) == (7, data)
    assert same_outcome(packet_in(tlv(IN_PORT, struct.pack("!I", 7)), data))[1:3] == (7, data)


def test_the_match_is_the_framework_s_once_asked_for_and_the_message_prints():
    buf = packet_in(tlv(IN_PORT, struct.pack("!I", 3)) + tlv(ofp.OXM_OF_METADATA, struct.pack("!Q", 9)))
    msg = fast(buf)
    assert msg.match.items() == framework_own(buf).match.items() == [("in_port", 3), ("metadata", 9)]
    assert msg.match is msg.match  # parsed once
    assert "OFPPacketIn" in str(msg)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(b"", id="no fields: no port"),
        pytest.param(tlv(ofp.OXM_OF_METADATA, struct.pack("!Q", 1)), id="no in_port"),
        pytest.param(tlv(ofp.OXM_OF_METADATA) + tlv(IN_PORT, b"\0\0\0\x05"), id="in_port last"),
        pytest.param(tlv(IN_PORT, b"\0\0\0\x05") + tlv(IN_PORT, b"\0\0\0\x06"), id="two in_ports: the last"),
        pytest.param(tlv(ofp.OXM_OF_TUNNEL_ID_W) + tlv(IN_PORT, b"\0\0\0\x01"), id="masked field"),
        pytest.param(tlv(IN_PORT, b"\xff\xff\xff\xfd"), id="the controller's port"),
    ],
)
def test_match_fields_in_any_order_with_or_without_a_port(fields):
    same_outcome(packet_in(fields))


@pytest.mark.parametrize(
    ("buffer_id", "total_len", "data"),
    [
        (ofp.OFP_NO_BUFFER, None, b"x" * 60),
        (0x1234, 1500, b"y" * 128),  # buffered: only the first bytes came up
        (7, 20, b"z" * 24),  # total shorter than what follows the match: the framework cuts it
        (ofp.OFP_NO_BUFFER, 0, b""),
    ],
)
def test_buffered_packets_and_their_lengths(buffer_id, total_len, data):
    fields = tlv(IN_PORT, b"\0\0\0\x02")
    same_outcome(packet_in(fields, data, buffer_id=buffer_id, total_len=total_len, reason=1, table_id=3, cookie=9))


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(tlv(0x0001_1004, b"\0\0\0\x20") + tlv(IN_PORT, b"\0\0\0\x01"), id="an NXM field"),
        pytest.param(tlv(0xFFFF_0008, struct.pack("!II", 0x4F4E4600, 1)), id="an experimenter field"),
        pytest.param(tlv(0x8000_7E04) + tlv(IN_PORT, b"\0\0\0\x01"), id="a field the framework does not know"),
        pytest.param(tlv(0x8000_0008, bytes(8)), id="in_port of the wrong length"),
        pytest.param(tlv(0x8000_0000, b""), id="a field with no value"),
    ],
)
def test_fields_it_cannot_vouch_for_go_to_the_framework_s_parser(fields):
    same_outcome(packet_in(fields))


@pytest.mark.parametrize(
    ("buf", "what"),
    [
        (packet_in(tlv(IN_PORT, b"\0\0\0\x01"), match_length=0), "match shorter than its header"),
        (packet_in(tlv(IN_PORT, b"\0\0\0\x01"), match_length=10), "a field overrunning the match"),
        (packet_in(tlv(IN_PORT, b"\0\0\0\x01"), match_length=400), "a match overrunning the message"),
        (packet_in(tlv(IN_PORT, b"\0\0\0\x01"))[:20], "cut in its header"),
        (packet_in(tlv(IN_PORT, b"\0\0\0\x01"))[:30], "cut in its match"),
    ],
)
def test_malformed_packet_ins_are_refused_as_the_framework_refuses_them(buf, what):
    result = same_outcome(struct.pack("!BBHI", ofp.OFP_VERSION, ofp.OFPT_PACKET_IN, len(buf), 0) + buf[8:])
    assert result[0] != "parsed" or result[1] in (None, 1), what


# -- fuzzed --------------------------------------------------------------------------------------
def _field(header: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=header & 0xFF, max_size=header & 0xFF).map(lambda value: tlv(header, value))


fields = st.lists(
    st.one_of(
        st.sampled_from(PLAIN).flatmap(_field),
        st.sampled_from([0x0001_1004, 0x0001_1E04, 0x8000_7E04]).flatmap(_field),  # NXM, unknown
    ),
    max_size=6,
).map(b"".join)


@st.composite
def packet_ins(draw) -> bytes:
    data = draw(st.binary(max_size=100))
    total = draw(st.one_of(st.none(), st.integers(0, 0xFFFF)))
    buffer_id = draw(st.sampled_from([ofp.OFP_NO_BUFFER, 0, 0x1234]))
    return packet_in(draw(fields), data, buffer_id, total, draw(st.integers(0, 5)), draw(st.integers(0, 254)))


@st.composite
def damaged(draw) -> bytes:
    """A packet-in with bytes overwritten, inserted or cut off (its header's length kept true)."""
    buf = bytearray(draw(packet_ins()))
    for _ in range(draw(st.integers(1, 4))):
        if len(buf) <= 9:
            break
        action = draw(st.sampled_from(("flip", "insert", "truncate")))
        position = draw(st.integers(8, len(buf) - 1))
        if action == "flip":
            buf[position] = draw(st.integers(0, 255))
        elif action == "insert":
            buf[position:position] = draw(st.binary(min_size=1, max_size=8))
        else:
            del buf[position:]
    struct.pack_into("!H", buf, 2, len(buf))
    return bytes(buf)


@given(packet_ins())
def test_random_packet_ins_read_as_the_framework_reads_them(buf):
    same_outcome(buf)


@given(damaged())
def test_damaged_packet_ins_are_read_or_refused_as_the_framework_does(buf):
    same_outcome(buf)


# -- events handled where they are sent (framework.App) ---------------------------------------
handler_module = importlib.import_module(f"{framework.PACKAGE}.controller.handler")
hub = framework.hub
MAIN = framework.MAIN_DISPATCHER


class Recorder(framework.App):
    """An app noting what it handles: (event's xid, green thread, handlers running meanwhile)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list = []
        self.running = 0
        self.hold: dict[int, object] = {}  # xid -> an event its handler waits on (a blocked write)
        self.then_send: dict[int, object] = {}  # xid -> an event its handler sends to the app

    @framework.set_ev_cls(framework.ofp_event.EventOFPBarrierReply, MAIN)
    def _barrier_reply(self, ev):
        self.running += 1
        self.seen.append((ev.msg.xid, hub.getcurrent(), self.running))
        if ev.msg.xid in self.hold:
            self.hold[ev.msg.xid].wait()
        if ev.msg.xid in self.then_send:
            self._send_event(self.then_send[ev.msg.xid], MAIN)
        self.seen.append((ev.msg.xid, "done"))
        self.running -= 1
        if ev.msg.xid == 666:
            raise RuntimeError("a bug")


@pytest.fixture
def recorder():
    app = Recorder()
    handler_module.register_instance(app)
    return app


def barrier_reply(xid: int):
    msg = framework.ofproto_v1_3_parser.OFPBarrierReply(None)
    msg.xid = xid
    return framework.ofp_event.EventOFPBarrierReply(msg)


def test_an_event_is_handled_at_once_in_the_thread_that_sends_it(recorder):
    recorder._send_event(barrier_reply(1), MAIN)
    assert recorder.seen == [(1, hub.getcurrent(), 1), (1, "done")]
    assert recorder.events.empty()  # nothing queued for the app's own thread


def test_handlers_run_one_at_a_time_in_the_order_their_events_were_sent(recorder):
    recorder.hold[1] = blocked = hub.Event()
    senders = [hub.spawn(recorder._send_event, barrier_reply(xid), MAIN) for xid in (1, 2, 3)]
    hub.sleep(0.01)
    assert recorder.seen[-1][0] == 1 and len(recorder.seen) == 1  # 2 and 3 wait for 1
    blocked.set()
    hub.joinall(senders)
    assert [(x[0], x[-1]) for x in recorder.seen] == [(1, 1), (1, "done"), (2, 1), (2, "done"), (3, 1), (3, "done")]
    assert [x[1] for x in recorder.seen[::2]] == senders  # each in its sender's


def test_an_event_sent_by_a_handler_is_handled_after_it_not_within_it(recorder):
    recorder.then_send[1] = barrier_reply(2)
    recorder._send_event(barrier_reply(1), MAIN)
    assert [(x[0], x[-1]) for x in recorder.seen] == [(1, 1), (1, "done"), (2, 1), (2, "done")]


def test_a_handler_s_exception_is_logged_and_the_next_event_handled(recorder, caplog):
    caplog.set_level(logging.ERROR, logger="segctl.framework")
    recorder._send_event(barrier_reply(666), MAIN)  # raises nothing into the framework
    assert "handler _barrier_reply failed on EventOFPBarrierReply" in caplog.text
    recorder._send_event(barrier_reply(2), MAIN)
    assert recorder.seen[-1] == (2, "done")


def test_events_in_a_state_the_handler_does_not_take_are_not_handled(recorder):
    recorder._send_event(barrier_reply(1), framework.CONFIG_DISPATCHER)
    assert recorder.seen == []


def test_the_app_still_stops(recorder):
    recorder.start()
    recorder.stop()  # its event thread took the stop event and ended
    assert all(thread.dead for thread in recorder.threads)


# -- reading a switch ahead (framework.wrap_socket) ---------------------------------------------
class Arriving:
    """A socket the switch's bytes arrive on in the given chunks; b"" once they are all read."""

    def __init__(self, chunks: list[bytes]):
        self.chunks = list(chunks)
        self.asked: list[int] = []
        self.closed = False

    def recv(self, size: int) -> bytes:
        self.asked.append(size)
        if not self.chunks:
            return b""
        chunk = self.chunks.pop(0)
        if len(chunk) > size:
            self.chunks.insert(0, chunk[size:])
        return chunk[:size]

    def close(self) -> None:
        self.closed = True


class Switch:
    def __init__(self, sock):
        self.socket = sock


def framework_reads(sock) -> list[bytes]:
    """The messages as the framework's receiving loop reads them: a header's 8 bytes, then the
    rest of the message, each read possibly short."""
    messages, buf, want = [], b"", 8
    while True:
        data = sock.recv(want - len(buf) if len(buf) < want else 8)
        assert len(data) <= max(8, want - len(buf))
        if not data:
            return messages
        buf += data
        if len(buf) >= 8:
            length = struct.unpack_from("!H", buf, 2)[0]
            want = length
            if len(buf) >= length:
                messages.append(buf[:length])
                buf, want = buf[length:], 8


def wire(sizes: list[int]) -> list[bytes]:
    return [struct.pack("!BBHI", 4, 10, 8 + size, n) + bytes([n % 256]) * size for n, size in enumerate(sizes)]


@given(st.lists(st.integers(0, 300), max_size=40), st.lists(st.integers(1, 700), min_size=1, max_size=10))
def test_read_ahead_the_framework_reads_the_same_messages(sizes, cuts):
    stream = b"".join(wire(sizes))
    chunks, at = [], 0
    while at < len(stream):
        cut = cuts[len(chunks) % len(cuts)]
        chunks.append(stream[at : at + cut])
        at += cut
    switch = Switch(Arriving(chunks))
    framework.wrap_socket(switch)
    assert framework_reads(switch.socket) == wire(sizes)


def test_read_ahead_takes_all_that_came_in_one_read_and_says_more_is_there():
    sock = Arriving([b"".join(wire([10, 20, 30]))])
    switch = Switch(sock)
    framework.wrap_socket(switch)
    framework.wrap_socket(switch)  # (once is enough)
    assert framework.more_to_read(switch) is False
    assert switch.socket.recv(8) == wire([10])[0][:8]
    assert sock.asked == [framework._SwitchSocket.READ_AHEAD]
    assert framework.more_to_read(switch) is True  # the rest is read, not yet handed over
    assert switch.socket.recv(10) == wire([10])[0][8:]
    assert framework_reads(switch.socket) == wire([10, 20, 30])[1:]
    assert framework.more_to_read(switch) is False
    switch.socket.close()  # what it does not do itself is the socket's
    assert sock.closed


def test_a_switch_without_a_socket_of_its_own_is_left_alone():
    switch = object()
    framework.wrap_socket(switch)
    assert framework.more_to_read(switch) is False


# -- writing straight to a switch's socket (framework.write) ---------------------------------
class FrameworkSwitch:
    """What write() uses of a framework's datapath, as the framework does it: a queue of bytes
    to send, drained by a writing green thread through the (wrapped) socket's sendall."""

    def __init__(self, sock):
        self.socket = sock
        self.send_q = hub.Queue(16)
        self.queued: list[bytes] = []
        self.writer = hub.spawn(self._send_loop)

    def send(self, data) -> None:
        self.queued.append(bytes(data))
        self.send_q.put(data)

    def _send_loop(self) -> None:
        while True:
            self.socket.sendall(self.send_q.get())


@pytest.fixture
def wire_pair():
    from eventlet.green import socket

    ours, theirs = socket.socketpair()
    switch = FrameworkSwitch(ours)
    framework.wrap_socket(switch)
    yield switch, theirs
    hub.kill(switch.writer)
    ours.close()
    theirs.close()


def received(sock, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data


def test_writes_go_the_framework_s_way_until_its_writer_has_written_through_the_wrap(wire_pair):
    switch, theirs = wire_pair
    framework.write(switch, b"one")  # (a write of the writer's from before the wrap may be on)
    assert switch.queued == [b"one"]
    assert received(theirs, 3) == b"one"
    framework.write(switch, b"two")  # now straight to the socket
    assert switch.queued == [b"one"] and received(theirs, 3) == b"two"


def test_a_write_waits_behind_what_the_framework_has_queued(wire_pair):
    switch, theirs = wire_pair
    framework.write(switch, b"0")
    received(theirs, 1)
    switch.send(b"queued")  # its writer has not run yet
    framework.write(switch, b"mine")
    assert switch.queued[1:] == [b"queued", b"mine"]
    assert received(theirs, 10) == b"queuedmine"


def test_what_the_socket_does_not_take_at_once_follows_through_the_queue_in_order(wire_pair):
    switch, theirs = wire_pair
    framework.write(switch, b"0")
    received(theirs, 1)
    big = bytes(range(256)) * 16384  # 4 MiB: more than the socket's buffers hold
    framework.write(switch, big)
    framework.write(switch, b"after")
    assert len(switch.queued) == 3 and switch.queued[-1] == b"after"  # the rest of `big`, then this
    assert 0 < len(switch.queued[1]) < len(big)
    assert received(theirs, len(big) + 5) == big + b"after"


def test_a_socket_that_is_not_plain_is_written_the_framework_s_way():
    class Tls:
        def sendall(self, data):
            self.sent = data

    switch = FrameworkSwitch(Tls())
    framework.wrap_socket(switch)
    switch.socket.sendall(b"x")
    framework.write(switch, b"data")
    hub.sleep(0)
    assert switch.queued == [b"data"] and switch.socket.sent == b"data"
    hub.kill(switch.writer)


def test_a_switch_that_always_has_more_to_read_lets_the_others_run(wire_pair):
    """Answered at once, a busy switch has sent more before its reading thread is done with
    what it read: that thread yields before it reads again."""
    switch, theirs = wire_pair
    ran = []
    other = hub.spawn(ran.append, "other")
    theirs.sendall(b"a")
    assert switch.socket.recv(1) == b"a"  # data was there: read without waiting, after the others' turn
    assert ran == ["other"]
    hub.kill(other)


def test_blocking_work_runs_in_a_thread_nicer_than_the_event_loop_and_the_loop_keeps_its_priority():
    import os
    import threading

    seen: dict = {}

    def work(value):
        me = threading.get_native_id()
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, me)
        return value * 2

    def worker():
        seen["result"] = framework.in_background(work, 21)
        seen["again"] = framework.in_background(work, 1)  # made nicer once, not twice

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["result"] == 42 and seen["again"] == 2
    assert before < 19 and seen["nice"] > before  # nicer than the caller ...
    assert seen["nice"] == min(19, before + framework.BACKGROUND_NICENESS)  # ... by this much, once
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before  # the caller's own
