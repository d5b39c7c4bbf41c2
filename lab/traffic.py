"""Traffic probes run inside Mininet hosts (standard library only).

traffic.py serve --tcp 22,8080 --udp 514      listen; UDP datagrams are echoed back
traffic.py check ID:IP:PROTO:PORT ...         try each target at once, print one JSON line each
traffic.py stream IP PORT --out FILE          one busy TCP connection, each echo's time to FILE
traffic.py connect-times IP PORT N            N new TCP connections one after another; their setup times
traffic.py connections IP PORT N [--seconds S]  N short TCP connections back to back, as fast as it can
traffic.py flood IP PORT SECONDS [--rate R]   R new UDP flows a second, each from a fresh source port
traffic.py capture IFACE ETHERTYPE OUT        save the next frame of that ethertype arriving on IFACE
traffic.py inject IFACE FILE... [--count N --rate R]  send the frames saved in each FILE out of IFACE
traffic.py watch IFACE SECONDS [filters]      count the IPv4 packets that arrive on IFACE (see --help)
traffic.py tally IFACE                        until SIGTERM: arrivals by source, protocol and port/type
traffic.py mac-flood IFACE SECONDS --rate R   frames from random source MACs, R a second
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time


def _serve_tcp(port: int) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(128)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=_echo_stream, args=(conn,), daemon=True).start()


def _echo_stream(conn: socket.socket) -> None:
    with conn:
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)
        except OSError:
            return


def _serve_udp(port: int) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("0.0.0.0", port))
    while True:
        data, peer = server.recvfrom(65536)
        server.sendto(data, peer)


def serve(tcp: list[int], udp: list[int]) -> None:
    for port in tcp:
        threading.Thread(target=_serve_tcp, args=(port,), daemon=True).start()
    for port in udp:
        threading.Thread(target=_serve_udp, args=(port,), daemon=True).start()
    print("serving", flush=True)
    while True:
        time.sleep(3600)


def check_tcp(ip: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(b"segctl-probe")
            return conn.recv(64) == b"segctl-probe"
    except ConnectionRefusedError:
        return True  # a RST came back: the packets crossed the network
    except OSError:
        return False


def check_udp(ip: str, port: int, timeout: float, size: int = 0) -> bool:
    """A datagram there and its echo back; `size` bytes pads it (past the MTU: fragments)."""
    message = b"segctl-probe".ljust(size, b".")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                sock.sendto(message, (ip, port))
                data, _ = sock.recvfrom(65536)
                if data == message:
                    return True
            except OSError:
                continue
    return False


def check_icmp(ip: str, timeout: float, size: int = 0) -> bool:
    count = max(2, int(timeout / 0.3))
    sized = ["-s", str(size)] if size else []
    result = subprocess.run(
        ["ping", "-n", "-q", "-c", str(count), "-i", "0.3", "-w", str(max(1, round(timeout))), *sized, ip],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return result.returncode == 0


def check(targets: list[str], timeout: float, size: int = 0) -> None:
    results: dict[str, bool] = {}

    def one(target: str) -> None:
        ident, ip, proto, port = target.split(":")
        if proto == "tcp":
            results[ident] = check_tcp(ip, int(port), timeout)
        elif proto == "udp":
            results[ident] = check_udp(ip, int(port), timeout, size)
        else:
            results[ident] = check_icmp(ip, timeout, size)

    threads = [threading.Thread(target=one, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ident, ok in results.items():
        print(json.dumps({"id": ident, "ok": ok}), flush=True)


def stream(ip: str, port: int, interval: float, out: str) -> None:
    """Keep one TCP connection busy; append the time of every echoed message to `out`."""
    with open(out, "a", buffering=1) as log, socket.create_connection((ip, port), timeout=3) as conn:
        conn.settimeout(0.5)
        while True:
            try:
                conn.sendall(b"tick")
                if conn.recv(64):
                    log.write(f"{time.time():.6f}\n")
            except TimeoutError:
                log.write("timeout\n")
            except OSError:
                return
            time.sleep(interval)


def connect_times(ip: str, port: int, count: int, gap: float = 0.05) -> None:
    """Print, as JSON, how long each of `count` new TCP connections took to establish (None:
    it failed), one after another, `gap` seconds apart."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        try:
            with socket.create_connection((ip, port), timeout=3) as conn:
                times.append(time.perf_counter() - started)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST: no TIME_WAIT
        except OSError:
            times.append(None)
        if gap:
            time.sleep(gap)
    print(json.dumps(times))


def connections(ip: str, port: int, count: int, seconds: float, timeout: float) -> None:
    """Open `count` short TCP connections back to back (connect, send a byte, read its echo,
    close), stopping early after `seconds`; print one JSON line: each connect()'s duration in
    seconds ("setup"), how many completed ("ok") or failed, the wall time of the whole run and
    this process's CPU time (is the client the bottleneck?)."""
    setup: list[float] = []
    failed = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(count):
        if time.perf_counter() - started > seconds:
            break
        begin = time.perf_counter()
        try:
            with socket.create_connection((ip, port), timeout=timeout) as conn:
                connected = time.perf_counter()
                conn.sendall(b"x")
                if conn.recv(1) != b"x":
                    raise OSError("no echo")
            setup.append(connected - begin)
        except OSError:
            failed += 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(json.dumps({"setup": setup, "ok": len(setup), "failed": failed, "elapsed": elapsed, "cpu": cpu}), flush=True)


def flood(ip: str, port: int, seconds: float, rate: float, scan: bool = False) -> None:
    """A storm of new flows, `rate` per second: every datagram from a new source port, to
    `port` or, with `scan`, to a random port (random services: what a scan looks like)."""
    sent, started = 0, time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        if sent > elapsed * rate:
            time.sleep(0.002)
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"x", (ip, random.randint(20000, 60000) if scan else port))
        sent += 1
    print(json.dumps({"sent": sent, "rate": round(sent / seconds)}))


def watch(
    interface: str,
    seconds: float,
    src: str | None,
    proto: int | None,
    dport: int | None,
    syn: bool,
    icmp_type: int | None,
    later_fragment: bool,
) -> None:
    """Count the IPv4 packets arriving on `interface` for `seconds` that pass every filter given;
    print {"count": N}. "ready" is printed once the socket listens."""
    count = 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800)) as sock:
        sock.bind((interface, 0))
        print("ready", flush=True)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                frame, meta = sock.recvfrom(65535)
            except TimeoutError:
                break
            if meta[2] == socket.PACKET_OUTGOING or len(frame) < 34:
                continue
            ihl = (frame[14] & 0x0F) * 4
            flags_fragment = struct.unpack_from("!H", frame, 20)[0]
            l4 = 14 + ihl
            checks = (
                src is None or socket.inet_ntoa(frame[26:30]) == src,
                proto is None or frame[23] == proto,
                not later_fragment or flags_fragment & 0x1FFF,
                dport is None or (len(frame) >= l4 + 4 and struct.unpack_from("!H", frame, l4 + 2)[0] == dport),
                not syn or (len(frame) > l4 + 13 and frame[l4 + 13] & 0x12 == 0x02),
                icmp_type is None or (len(frame) > l4 and frame[l4] == icmp_type and not flags_fragment & 0x1FFF),
            )
            count += all(checks)
    print(json.dumps({"count": count}), flush=True)


def _arrival_key(frame: bytes) -> str | None:
    """ "SRC:PROTO:PORT" of an IPv4 packet (PORT: the TCP/UDP destination port, the ICMP type);
    None for anything else, later fragments included."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    if struct.unpack_from("!H", frame, 20)[0] & 0x1FFF:
        return None
    proto, l4 = frame[23], 14 + (frame[14] & 0x0F) * 4
    if proto in (6, 17) and len(frame) >= l4 + 4:
        port = struct.unpack_from("!H", frame, l4 + 2)[0]
    elif proto == 1 and len(frame) > l4:
        port = frame[l4]
    else:
        return None
    return f"{socket.inet_ntoa(frame[26:30])}:{proto}:{port}"


def tally(interface: str) -> None:
    """Count arriving IPv4 packets by _arrival_key until SIGTERM, then print {"tally": {...}}:
    what reached this host, whether or not it answered."""
    counts: dict[str, int] = {}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800)) as sock:
        sock.bind((interface, 0))
        sock.settimeout(0.1)
        print("ready", flush=True)
        while not stop.is_set():
            try:
                frame, meta = sock.recvfrom(65535)
            except (TimeoutError, InterruptedError):
                continue
            key = None if meta[2] == socket.PACKET_OUTGOING else _arrival_key(frame)
            if key is not None:
                counts[key] = counts.get(key, 0) + 1
    print(json.dumps({"tally": counts}), flush=True)


def mac_flood(interface: str, seconds: float, rate: float, dst_mac: str, dst_ip: str) -> None:
    """IPv4 frames from random (locally administered) source MACs and addresses, `rate` a second."""
    sent, started = 0, time.monotonic()
    dst = bytes.fromhex(dst_mac.replace(":", ""))
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((interface, 0))
        while (elapsed := time.monotonic() - started) < seconds:
            if sent > elapsed * rate:
                time.sleep(0.001)
                continue
            src = bytes([0x02, *random.randbytes(5)])
            ip = struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0, random.randbytes(4), socket.inet_aton(dst_ip)
            )
            sock.send(dst + src + b"\x08\x00" + ip + struct.pack("!HHHH", 40000, 514, 8, 0))
            sent += 1
    print(json.dumps({"sent": sent, "rate": round(sent / seconds)}))


def capture(interface: str, ethertype: int, out: str, timeout: float = 10.0) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype)) as sock:
        sock.bind((interface, 0))
        sock.settimeout(timeout)
        frame = sock.recv(65535)
    with open(out, "wb") as handle:
        handle.write(frame)


def inject(interface: str, paths: list[str], count: int = 1, rate: float = 0.0) -> None:
    """Send the frames, in turn, `count` times over, at most `rate` frames a second (0: at once)."""
    frames = []
    for path in paths:
        with open(path, "rb") as handle:
            frames.append(handle.read())
    started = time.monotonic()
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((interface, 0))
        for sent in range(count * len(frames)):
            if rate and sent > (time.monotonic() - started) * rate:
                time.sleep(max(0.0, sent / rate - (time.monotonic() - started)))
            sock.send(frames[sent % len(frames)])


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--tcp", default="")
    s.add_argument("--udp", default="")
    c = sub.add_parser("check")
    c.add_argument("--timeout", type=float, default=1.5)
    c.add_argument("--size", type=int, default=0, help="udp payload / ping data bytes")
    c.add_argument("targets", nargs="*")
    t = sub.add_parser("stream")
    t.add_argument("ip")
    t.add_argument("port", type=int)
    t.add_argument("--interval", type=float, default=0.01)
    t.add_argument("--out", required=True)
    ct = sub.add_parser("connect-times")
    ct.add_argument("ip")
    ct.add_argument("port", type=int)
    ct.add_argument("count", type=int)
    ct.add_argument("--gap", type=float, default=0.05)
    cn = sub.add_parser("connections")
    cn.add_argument("ip")
    cn.add_argument("port", type=int)
    cn.add_argument("count", type=int)
    cn.add_argument("--seconds", type=float, default=60.0, help="stop after this long")
    cn.add_argument("--timeout", type=float, default=2.0, help="per connection")
    f = sub.add_parser("flood")
    f.add_argument("ip")
    f.add_argument("port", type=int)
    f.add_argument("seconds", type=float)
    f.add_argument("--rate", type=float, default=5000, help="new flows per second")
    f.add_argument("--scan", action="store_true", help="random destination ports")
    w = sub.add_parser("watch")
    w.add_argument("interface")
    w.add_argument("seconds", type=float)
    w.add_argument("--src")
    w.add_argument("--proto", type=int)
    w.add_argument("--dport", type=int)
    w.add_argument("--syn", action="store_true", help="only TCP SYNs (no ACK)")
    w.add_argument("--icmp-type", type=int)
    w.add_argument("--later-fragment", action="store_true")
    ta = sub.add_parser("tally")
    ta.add_argument("interface")
    m = sub.add_parser("mac-flood")
    m.add_argument("interface")
    m.add_argument("seconds", type=float)
    m.add_argument("--rate", type=float, default=5000)
    m.add_argument("--dst-mac", required=True)
    m.add_argument("--dst-ip", required=True)
    cap = sub.add_parser("capture")
    cap.add_argument("interface")
    cap.add_argument("ethertype", type=lambda text: int(text, 0))
    cap.add_argument("out")
    inj = sub.add_parser("inject")
    inj.add_argument("interface")
    inj.add_argument("files", nargs="+")
    inj.add_argument("--count", type=int, default=1)
    inj.add_argument("--rate", type=float, default=0.0)
    args = parser.parse_args()
    if args.command == "connect-times":
        connect_times(args.ip, args.port, args.count, args.gap)
    elif args.command == "connections":
        connections(args.ip, args.port, args.count, args.seconds, args.timeout)
    elif args.command == "flood":
        flood(args.ip, args.port, args.seconds, args.rate, args.scan)
    elif args.command == "watch":
        watch(args.interface, args.seconds, args.src, args.proto, args.dport, args.syn, args.icmp_type,
              args.later_fragment)  # fmt: skip
    elif args.command == "tally":
        tally(args.interface)
    elif args.command == "mac-flood":
        mac_flood(args.interface, args.seconds, args.rate, args.dst_mac, args.dst_ip)
    elif args.command == "capture":
        capture(args.interface, args.ethertype, args.out)
    elif args.command == "inject":
        inject(args.interface, args.files, args.count, args.rate)
    elif args.command == "stream":
        stream(args.ip, args.port, args.interval, args.out)
    elif args.command == "serve":
        ports = lambda text: [int(p) for p in text.split(",") if p]  # noqa: E731
        serve(ports(args.tcp), ports(args.udp))
    else:
        check(args.targets, args.timeout, args.size)


if __name__ == "__main__":
    sys.exit(main())
