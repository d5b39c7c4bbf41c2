"""Flow setups per second and setup latency: segctl against Ryu's own learning switch
(ryu.app.simple_switch_13), same emulated switches, same flows, same machine, same run.

    python -m bench.flowsetup [--runs 5] [--duration 4]

Each run starts a fresh controller process, connects the emulated switches, announces the
hosts, then measures. Controller CPU (share of one core) and RSS are read from /proc."""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from . import emulator
from .workload import Workload

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
TICKS = os.sysconf("SC_CLK_TCK")


def controller_command(kind: str, port: int, folder: str, files: tuple[str, str], api_port: int = 0) -> list[str]:
    if kind in ("segctl", "segctl, no audit", "segctl, no flow store"):
        directory, policy = files
        return [
            PYTHON, "-m", "segctl", "run", "--directory", directory, "--policy", policy,
            "--of-host", "127.0.0.1", "--of-port", str(port), "--api-port", str(api_port), "--state-dir", folder,
        ] + (["--audit-interval", "0"] if kind == "segctl, no audit" else []) + (
            ["--retention", "0"] if kind == "segctl, no flow store" else []
        )  # fmt: skip
    if kind == "simple_switch_13":
        return [
            PYTHON, "-m", "bench.ryuapp", "ryu.app.simple_switch_13",
            "--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(port),
        ]  # fmt: skip
    if kind == "null":
        return [PYTHON, "-m", "bench.nullctl", str(port)]
    raise ValueError(kind)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"controller exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"controller did not listen on {port}")


class ProcessMeter:
    """Samples a process's CPU time every 50 ms, for the CPU share over any window."""

    def __init__(self, pid: int):
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.time(), self.cpu_seconds()))
            except (OSError, IndexError):
                return
            self._stop.wait(0.05)

    def share(self, start: float, end: float) -> float:
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return float("nan")
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    def rss_mib(self) -> float:
        with open(f"/proc/{self.pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def one_run(
    kind: str,
    workload: Workload,
    allowed_share: float,
    window: int,
    duration: float,
    processes: int,
    profile: str | None = None,
) -> dict:
    with tempfile.TemporaryDirectory(prefix="segctl-bench-") as folder:
        files = workload.write(folder)
        port = free_port()
        log = open(os.path.join(folder, "controller.log"), "w")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            controller_command(kind, port, folder, files), cwd=ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        meter = None
        try:
            wait_listening(port, process)
            meter = ProcessMeter(process.pid)
            if profile:
                # py-spy samples the controller from outside (collapsed stacks, for bench.hotspots).
                subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "-p",
                        str(process.pid),
                        "-o",
                        profile,
                        "-f",
                        "raw",
                        "-d",
                        str(int(duration + 8)),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            switches = [
                (
                    dpid,
                    [h for h in workload.hosts if h.switch == dpid],
                    workload.flows(dpid, allowed_share),
                    workload.ports_per_switch,
                )
                for dpid in range(1, workload.switches + 1)
            ]
            result = emulator.run("127.0.0.1", port, switches, window, duration, warmup=1.5, processes=processes)
            result["cpu"] = meter.share(result["started"], result["ended"])
            result["rss_mib"] = meter.rss_mib()
            if process.poll() is not None:
                raise RuntimeError(f"{kind} exited during the run")
            return result
        except Exception:
            log.flush()
            with open(log.name) as handle:
                sys.stderr.write(handle.read()[-3000:])
            raise
        finally:
            if meter is not None:
                meter.stop()
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


CASES = [
    # (label, controller, share of flows the policy allows)
    ("simple_switch_13", "simple_switch_13", 1.0),
    ("segctl, 50% allowed", "segctl", 0.5),
    ("segctl, 100% allowed", "segctl", 1.0),
    # The flow-table audit's cost: the same, with the audit off (it reads each switch's table,
    # which the emulated switches keep, every 30 s by default: one of the 16 every 1.9 s).
    ("segctl, 100% allowed, audit off", "segctl, no audit", 1.0),
    # The flow store's cost: every row above records each decision (the default, --retention 7d);
    # this one does not (--retention 0).
    ("segctl, 100% allowed, flow store off", "segctl, no flow store", 1.0),
]
MODES = [("throughput", 64), ("latency", 1)]


def summarize(runs: list[dict]) -> dict:
    def median(key):
        return statistics.median(r[key] for r in runs)

    return {
        "rate": median("rate"),
        "p50_ms": median("p50_ms"),
        "p99_ms": median("p99_ms"),
        "cpu": median("cpu"),
        "rss_mib": max(r["rss_mib"] for r in runs),
        "mismatches": sum(r["mismatches"] for r in runs),
        "flow_mods_per_setup": median("flow_mods_per_setup"),
        "packet_outs_per_setup": median("packet_outs_per_setup"),
        "rates": [round(r["rate"]) for r in runs],
        "p99s": [round(r["p99_ms"], 2) for r in runs],
    }


def markdown(results: dict) -> str:
    """The results as a table, each segctl row with its ratio to simple_switch_13's."""
    lines = [
        f"Emulator against a null controller (its own ceiling): **{results['emulator_capacity']:,.0f} flow setups/s**.",
        "",
        "| mode | controller | flow setups/s | ratio | p50 latency | p99 latency | p99 ratio | CPU | RSS |"
        " flow-mods + packet-outs per setup | mismatches | per-run setups/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, table in results["modes"].items():
        base = table.get("simple_switch_13")
        for label, r in table.items():
            ratio = f"{r['rate'] / base['rate']:.2f}×" if base else ""
            p99_ratio = f"{r['p99_ms'] / base['p99_ms']:.2f}×" if base else ""
            lines.append(
                f"| {mode} | {label} | {r['rate']:,.0f} | {ratio} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | "
                f"{p99_ratio} | {r['cpu']:.0%} | {r['rss_mib']:.0f} MiB | "
                f"{r['flow_mods_per_setup']:.1f} + {r['packet_outs_per_setup']:.1f} | {r['mismatches']} | "
                f"{', '.join(f'{x:,}' for x in r['rates'])} |"
            )
    return "\n".join(lines + store_cost(results))


STORE_ON, STORE_OFF = "segctl, 100% allowed", "segctl, 100% allowed, flow store off"


def store_cost(results: dict) -> list[str]:
    """What recording every decision costs: the store's row against the same with the store off,
    and round by round (a round's runs are a minute apart at most)."""
    lines = []
    for mode, table in results["modes"].items():
        if STORE_ON not in table or STORE_OFF not in table:
            continue
        on, off = table[STORE_ON], table[STORE_OFF]
        rates = ", ".join(f"{r - 1:+.0%}" for r in sorted(a / b for a, b in zip(on["rates"], off["rates"])))
        p99s = ", ".join(f"{d:+.1f}" for d in sorted(a - b for a, b in zip(on["p99s"], off["p99s"])))
        lines.append(
            f"- {mode} mode: {on['rate'] / off['rate'] - 1:+.1%} flow setups/s with the flow store "
            f"({on['rate']:,.0f} against {off['rate']:,.0f}; round by round {rates}); p99 {on['p99_ms']:.2f} "
            f"against {off['p99_ms']:.2f} ms (round by round {p99s} ms); CPU {on['cpu']:.0%} against {off['cpu']:.0%}"
        )
    if not lines:
        return []
    return ["", "The flow store's cost: every decision recorded, against `--retention 0` (medians):", "", *lines]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--switches", type=int, default=16)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2, help="emulator processes")
    parser.add_argument("--only", help="run only the cases whose label contains this")
    parser.add_argument("--mode", choices=[mode for mode, _ in MODES], help="run only this mode")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--profile", help="record one segctl throughput run with py-spy into this file, then stop")
    args = parser.parse_args(argv)
    workload = Workload(args.hosts, args.switches, args.rules)
    if args.profile:
        result = one_run("segctl", workload, 0.5, 64, args.duration, args.processes, profile=args.profile)
        print(f"segctl, 50% allowed: {result['rate']:,.0f} flow setups/s; profile in {args.profile}")
        return 0
    results = {"config": vars(args), "modes": {}}

    headroom = one_run("null", workload, 1.0, 64, args.duration, args.processes)
    results["emulator_capacity"] = headroom["rate"]
    print(f"emulator against a null controller: {headroom['rate']:,.0f} flow setups/s", flush=True)
    cases = [case for case in CASES if not args.only or args.only in case[0]]
    for mode, window in [(mode, window) for mode, window in MODES if args.mode in (None, mode)]:
        # Round by round, one run of each case, the order turned each round: every case meets the
        # same moments of a machine whose speed drifts, and a case's n-th run pairs with the others'.
        runs: dict[str, list[dict]] = {label: [] for label, _, _ in cases}
        for round_ in range(args.runs):
            turn = round_ % len(cases)
            for label, kind, share in cases[turn:] + cases[:turn]:
                runs[label].append(one_run(kind, workload, share, window, args.duration, args.processes))
        table = results["modes"][mode] = {}
        for label, _, _ in cases:
            table[label] = summary = summarize(runs[label])
            print(
                f"{mode:<10} {label:<22} {summary['rate']:>8,.0f}/s  p50 {summary['p50_ms']:.2f} ms  "
                f"p99 {summary['p99_ms']:.2f} ms  cpu {summary['cpu']:.0%}  rss {summary['rss_mib']:.0f} MiB  "
                f"mismatches {summary['mismatches']}  runs {summary['rates']}  p99s {summary['p99s']}",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
