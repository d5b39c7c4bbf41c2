"""Traffic probes run inside Mininet hosts (standard library only).

probe.py serve --tcp 22,8080 --udp 514      listen; UDP datagrams are echoed back
probe.py check ID:IP:PROTO:PORT ...         try each target at once, print one JSON line each
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
    args = parser.parse_args()
    if args.command == "stream":
        stream(args.ip, args.port, args.interval, args.out)
    elif args.command == "serve":
        ports = lambda text: [int(p) for p in text.split(",") if p]  # noqa: E731
        serve(ports(args.tcp), ports(args.udp))
    else:
        check(args.targets, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
