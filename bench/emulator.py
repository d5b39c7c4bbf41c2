"""A cbench-like OpenFlow 1.3 switch emulator: S switches connect to a controller over TCP,
complete the handshake, announce their hosts, then send packet-ins for new TCP connections.

- latency mode: one packet-in outstanding per switch;
- throughput mode: a window of W outstanding per switch.

A flow setup is done when the controller answers that very packet: a packet-out carrying it
(forwarded) or a flow-mod that drops exactly it (denied). Every answer is checked against the
verdict the policy gives; a wrong one is a mismatch. Switches are split over several processes
so the emulator is not what limits the rate."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import struct
import time
from dataclasses import dataclass, field

from segctl.core.fabric import EDGE_SETTLE

from . import ofwire as of

SRC_PORT_OFFSET = of.PACKET_IN_FRAME_OFFSET + of.TCP_SRC_IN_FRAME


@dataclass
class SwitchStats:
    setups: int = 0
    mismatches: int = 0
    flow_mods: int = 0
    packet_outs: int = 0
    latencies: list = field(default_factory=list)


class EmulatedSwitch(asyncio.Protocol):
    def __init__(self, dpid: int, ports: int, hosts: list, flows: list, window: int):
        self.dpid, self.ports, self.hosts, self.window = dpid, ports, hosts, window
        # Per flow: a packet-in built once; only the TCP source port changes per send.
        self.templates = [
            (
                bytearray(
                    of.packet_in(f.src.port, of.tcp_syn(f.src.mac, f.dst.mac, f.src.ip, f.dst.ip, 0, f.dst_port))
                ),
                bytes(map(int, f.src.ip.split("."))),
                f.allowed,
            )
            for f in flows
        ]
        self.next_flow = 0
        self.next_port = 1024
        self.outstanding: dict[bytes, tuple[float, bool]] = {}
        self.buffer = b""
        self.transport = None
        self.ready = asyncio.get_running_loop().create_future()
        self.running = False
        self.refill = True  # send a new packet-in for each one answered (the benchmark loop)
        self.stats = SwitchStats()
        self._out: list[bytes] = []
        # The flow table, as the controller wrote it: (priority, match) -> a flow-stats record,
        # so the controller's flow-table audit reads back what it installed.
        self.table: dict[bytes, bytes] = {}
        self.by_masked: dict[int, dict[int, set[bytes]]] = {}  # delete mask -> masked cookie -> keys
        self.reads = 0

    # -- connection ------------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(of.message(of.HELLO))

    def connection_lost(self, exc) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"switch {self.dpid}: connection lost"))
        self.running = False

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        offset, size = 0, len(buffer)
        while size - offset >= 8:
            length = (buffer[offset + 2] << 8) | buffer[offset + 3]
            if length < 8:
                self.transport.close()
                return
            if size - offset < length:
                break
            self._handle(buffer[offset + 1], buffer[offset : offset + length])
            offset += length
        self.buffer = buffer[offset:]
        if self._out:
            self.transport.write(b"".join(self._out))
            self._out.clear()

    def _handle(self, kind: int, msg: bytes) -> None:
        if kind == of.PACKET_OUT:
            key = of.packet_out_key(msg)
            if key is not None:  # not the controller's LLDP or ARP
                self.stats.packet_outs += self.running
                self._answered(key, forwarded=True)
        elif kind == of.FLOW_MOD:
            self._store(msg)
            self.stats.flow_mods += self.running
            key = of.flow_mod_drop_key(msg)
            if key is not None:
                self._answered(key, forwarded=False)
        elif kind == of.ECHO_REQUEST:
            self._out.append(of.message(of.ECHO_REPLY, msg[8:], _xid(msg)))
        elif kind == of.BARRIER_REQUEST:
            self._out.append(of.message(of.BARRIER_REPLY, b"", _xid(msg)))
        elif kind == of.FEATURES_REQUEST:
            self._out.append(of.features_reply(_xid(msg), self.dpid))
        elif kind == of.MULTIPART_REQUEST:
            mp_type = struct.unpack_from("!H", msg, 8)[0]
            if mp_type == of.MP_PORT_DESC:
                self._out.append(of.port_desc_reply(_xid(msg), self.dpid, self.ports))
                if not self.ready.done():
                    self.ready.set_result(True)
            elif mp_type == of.MP_DESC:
                self._out.append(of.desc_reply(_xid(msg)))
            elif mp_type == of.MP_FLOW:
                self.reads += 1
                self._out += of.flow_stats_replies(_xid(msg), list(self.table.values()))
            else:
                self._out.append(of.message(of.MULTIPART_REPLY, struct.pack("!HH4x", mp_type, 0), _xid(msg)))
        elif kind == of.GET_CONFIG_REQUEST:
            self._out.append(of.message(of.GET_CONFIG_REPLY, struct.pack("!HH", 0, 0xFFFF), _xid(msg)))
        elif kind == of.ROLE_REQUEST:
            self._out.append(of.message(of.ROLE_REPLY, msg[8:], _xid(msg)))

    def _store(self, msg: bytes) -> None:
        """Keep the table as a switch would: adds, strict deletes, and deletes by cookie (the
        emulator ignores a non-strict delete's match: segctl's revocations select by cookie).
        Deletes by cookie go through an index per mask, so that revoking 10,000 connections
        costs the emulator what it costs a switch, not a scan of its table per delete."""
        cookie, mask, _, command, idle, hard, priority = struct.unpack_from("!QQBBHHH", msg, 8)
        match_length = struct.unpack_from("!H", msg, 50)[0]
        match = msg[48 : 48 + (match_length + 7) // 8 * 8]
        key = priority.to_bytes(2, "big") + match
        if command == of.FC_ADD:
            self._forget(key)
            self.table[key] = of.flow_stats_record(priority, idle, hard, cookie, match, msg[48 + len(match) :])
            for each, index in self.by_masked.items():
                index.setdefault(cookie & each, set()).add(key)
        elif command == of.FC_DELETE_STRICT:
            self._forget(key)
        elif command == of.FC_DELETE and mask == 0:
            self.table.clear()
            self.by_masked.clear()
        elif command == of.FC_DELETE:
            index = self.by_masked.get(mask)
            if index is None:
                index = self.by_masked[mask] = {}
                for stored, record in self.table.items():
                    index.setdefault(of.record_cookie(record) & mask, set()).add(stored)
            for stored in list(index.get(cookie & mask, ())):
                self._forget(stored)

    def _forget(self, key: bytes) -> None:
        record = self.table.pop(key, None)
        if record is not None:
            stored_cookie = of.record_cookie(record)
            for each, index in self.by_masked.items():
                index.get(stored_cookie & each, set()).discard(key)

    # -- traffic ---------------------------------------------------------------------------
    def announce_hosts(self) -> None:
        self.transport.write(b"".join(of.packet_in(h.port, of.arp_announce(h.mac, h.ip)) for h in self.hosts))

    def start(self, count: int | None = None) -> None:
        """Open `window` connections (or `count`, then no more as they are answered)."""
        self.running = True
        if count is not None:
            self.refill = False
        self.transport.write(b"".join(self._next_packet_in() for _ in range(count or self.window)))

    def stop(self) -> None:
        self.running = False

    def _next_packet_in(self) -> bytes:
        template, ip, allowed = self.templates[self.next_flow]
        self.next_flow = (self.next_flow + 1) % len(self.templates)
        port = self.next_port
        self.next_port = port + 1 if port < 65535 else 1024
        struct.pack_into("!H", template, SRC_PORT_OFFSET, port)
        self.outstanding[ip + port.to_bytes(2, "big")] = (time.perf_counter(), allowed)
        return bytes(template)

    def _answered(self, key: bytes | None, forwarded: bool) -> None:
        sent = self.outstanding.pop(key, None) if key else None
        if sent is None:
            return
        if self.running:
            self.stats.setups += 1
            self.stats.latencies.append(time.perf_counter() - sent[0])
            self.stats.mismatches += forwarded != sent[1]
            if self.refill:
                self._out.append(self._next_packet_in())


def _xid(msg: bytes) -> int:
    return struct.unpack_from("!I", msg, 4)[0]


async def connect(host, port, plan, window, connect_timeout=20.0) -> list[EmulatedSwitch]:
    """Connect one emulated switch per (dpid, hosts, flows, ports) and finish the handshakes."""
    loop = asyncio.get_running_loop()
    switches = []
    for dpid, hosts, flows, ports in plan:
        switch = functools.partial(EmulatedSwitch, dpid, ports, hosts, flows, window)
        _, protocol = await loop.create_connection(switch, host, port)
        switches.append(protocol)
    await asyncio.wait_for(asyncio.gather(*(s.ready for s in switches)), connect_timeout)
    # The controller installs its base entries, and binds no host until the ports settle.
    await asyncio.sleep(EDGE_SETTLE + 0.5)
    return switches


async def _worker(host, port, plan, window, warmup, duration, barrier) -> dict:
    loop = asyncio.get_running_loop()
    switches = await connect(host, port, plan, window)
    await loop.run_in_executor(None, barrier.wait)
    for switch in switches:
        switch.announce_hosts()
    await asyncio.sleep(warmup)
    await loop.run_in_executor(None, barrier.wait)
    started = time.time()
    for switch in switches:
        switch.start()
    await asyncio.sleep(duration)
    for switch in switches:
        switch.stop()
    ended = time.time()
    outstanding = sum(len(s.outstanding) for s in switches)
    for switch in switches:
        switch.transport.close()
    total = SwitchStats()
    for s in switches:
        total.setups += s.stats.setups
        total.mismatches += s.stats.mismatches
        total.flow_mods += s.stats.flow_mods
        total.packet_outs += s.stats.packet_outs
        total.latencies += s.stats.latencies
    return dict(total.__dict__, started=started, ended=ended, outstanding=outstanding)


def _worker_process(host, port, plan, window, warmup, duration, barrier, results) -> None:
    try:
        results.put(asyncio.run(_worker(host, port, plan, window, warmup, duration, barrier)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the run
        barrier.abort()
        results.put({"error": f"{type(exc).__name__}: {exc}"})


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def run(
    host: str,
    port: int,
    switches: list[tuple],
    window: int,
    duration: float,
    warmup: float = 1.0,
    processes: int = 2,
) -> dict:
    """`switches`: (dpid, hosts, flows, ports) per switch. Returns setups/s, latency, counts."""
    processes = max(1, min(processes, len(switches)))
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(
            target=_worker_process,
            args=(host, port, switches[i::processes], window, warmup, duration, barrier, results),
            daemon=True,
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    parts = [results.get(timeout=duration + warmup + 60) for _ in workers]
    for worker in workers:
        worker.join(10)
    errors = [p["error"] for p in parts if "error" in p]
    if errors:
        raise RuntimeError("; ".join(errors))
    latencies = [x for p in parts for x in p["latencies"]]
    setups = sum(p["setups"] for p in parts)
    span = max(p["ended"] for p in parts) - min(p["started"] for p in parts)
    return {
        "setups": setups,
        "rate": setups / span,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "mismatches": sum(p["mismatches"] for p in parts),
        "flow_mods_per_setup": sum(p["flow_mods"] for p in parts) / max(1, setups),
        "packet_outs_per_setup": sum(p["packet_outs"] for p in parts) / max(1, setups),
        "started": min(p["started"] for p in parts),
        "ended": max(p["ended"] for p in parts),
    }
