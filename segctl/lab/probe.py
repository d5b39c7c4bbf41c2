"""Traffic probes run inside Mininet hosts (standard library only).

probe.py serve --tcp 22,8080 --udp 514      listen; UDP datagrams are echoed back
probe.py check ID:IP:PROTO:PORT ...         try each target at once, print one JSON line each
probe.py stream IP PORT --out FILE          one busy TCP connection, each echo's time to FILE
probe.py connect-times IP PORT N            N new TCP connections one after another; their setup times
probe.py flood IP PORT SECONDS [--rate R]   R new UDP flows a second, each from a fresh source port
probe.py capture IFACE ETHERTYPE OUT        save the next frame of that ethertype arriving on IFACE
probe.py inject IFACE FILE                  send the frame saved in FILE out of IFACE
"""

from __future__ import annotations

import argparse
import json
import socket
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


def check_udp(ip: str, port: int, timeout: float) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                sock.sendto(b"segctl-probe", (ip, port))
                data, _ = sock.recvfrom(64)
                if data == b"segctl-probe":
                    return True
            except OSError:
                continue
    return False


def check_icmp(ip: str, timeout: float) -> bool:
    count = max(2, int(timeout / 0.3))
    result = subprocess.run(
        ["ping", "-n", "-q", "-c", str(count), "-i", "0.3", "-w", str(max(1, round(timeout))), ip],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return result.returncode == 0


def check(targets: list[str], timeout: float) -> None:
    results: dict[str, bool] = {}

    def one(target: str) -> None:
        ident, ip, proto, port = target.split(":")
        if proto == "tcp":
            results[ident] = check_tcp(ip, int(port), timeout)
        elif proto == "udp":
            results[ident] = check_udp(ip, int(port), timeout)
        else:
            results[ident] = check_icmp(ip, timeout)

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


def connect_times(ip: str, port: int, count: int) -> None:
    """Print, as JSON, how long each of `count` new TCP connections took to establish."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        try:
            with socket.create_connection((ip, port), timeout=3):
                times.append(time.perf_counter() - started)
        except OSError:
            times.append(None)
        time.sleep(0.05)
    print(json.dumps(times))


def flood(ip: str, port: int, seconds: float, rate: float) -> None:
    """A scan-like storm of new flows, `rate` per second: every datagram from a new source port."""
    sent, started = 0, time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        if sent > elapsed * rate:
            time.sleep(0.002)
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"x", (ip, port))
        sent += 1
    print(json.dumps({"sent": sent, "rate": round(sent / seconds)}))


def capture(interface: str, ethertype: int, out: str, timeout: float = 10.0) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype)) as sock:
        sock.bind((interface, 0))
        sock.settimeout(timeout)
        frame = sock.recv(65535)
    with open(out, "wb") as handle:
        handle.write(frame)


def inject(interface: str, path: str) -> None:
    with open(path, "rb") as handle, socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((interface, 0))
        sock.send(handle.read())


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--tcp", default="")
    s.add_argument("--udp", default="")
    c = sub.add_parser("check")
    c.add_argument("--timeout", type=float, default=1.5)
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
    f = sub.add_parser("flood")
    f.add_argument("ip")
    f.add_argument("port", type=int)
    f.add_argument("seconds", type=float)
    f.add_argument("--rate", type=float, default=5000, help="new flows per second")
    cap = sub.add_parser("capture")
    cap.add_argument("interface")
    cap.add_argument("ethertype", type=lambda text: int(text, 0))
    cap.add_argument("out")
    inj = sub.add_parser("inject")
    inj.add_argument("interface")
    inj.add_argument("file")
    args = parser.parse_args()
    if args.command == "connect-times":
        connect_times(args.ip, args.port, args.count)
    elif args.command == "flood":
        flood(args.ip, args.port, args.seconds, args.rate)
    elif args.command == "capture":
        capture(args.interface, args.ethertype, args.out)
    elif args.command == "inject":
        inject(args.interface, args.file)
    elif args.command == "stream":
        stream(args.ip, args.port, args.interval, args.out)
    elif args.command == "serve":
        ports = lambda text: [int(p) for p in text.split(",") if p]  # noqa: E731
        serve(ports(args.tcp), ports(args.udp))
    else:
        check(args.targets, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
