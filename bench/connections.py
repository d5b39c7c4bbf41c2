"""Issue 16 groundwork: TCP connection setup through real Open vSwitch (Mininet, userspace
datapath), for OVS NORMAL with no controller, ryu.app.simple_switch_13 and segctl, each with its
default settings, on the same loop-free topology (linear.yaml) and the shipped policy.

    python -m bench.connections [--count 2000] [--clients-count 1000] [--save]

Each row gets a fresh network and controller. A warm-up opens a few connections on every pair;
then one client opens short connections (connect, send a byte, read its echo, close) back to back
to a server in another segment, then four clients do the same at once. Setup time is the
duration of connect(); connections/s counts whole connections. For segctl it also reports the
packet-ins per 1,000 connections (GET /v1/health before and after), its flood events, and
whether a denied pair is still denied (checked at the destination, as Lab.outcomes does).
Needs root, Mininet and Open vSwitch (`make bench-mininet`); not part of `make bench`."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import textwrap
import time

from lab.net import TRAFFIC, Lab

from .__main__ import REPORT, RESULTS, ROOT, machine
from .flowsetup import TICKS, controller_command, free_port

TOPOLOGY = os.path.join(ROOT, "topologies", "linear.yaml")
DIRECTORY = os.path.join(ROOT, "policies", "directory.yaml")
POLICY = os.path.join(ROOT, "policies", "policy.yaml")
# (client, server, port), each allowed by the shipped policy, each across segments and switches.
ALLOWED = [("web1", "app1", 8080), ("web2", "app1", 8080), ("hr1", "hrapp1", 443), ("jump1", "db1", 22)]
DENIED = ("web1", "db1", "tcp", 5432)  # no rule lets web reach the database
# Row name -> the controller: None (bridges forward with NORMAL), "simple_switch_13", or segctl's
# extra arguments.
ROWS: dict[str, list[str] | str | None] = {
    "NORMAL": None,
    "simple_switch_13": "simple_switch_13",
    "segctl reactive": [],
    "segctl stateful": ["--pipeline", "auto"],
    # Not a default: what bounds the reactive row (Open vSwitch revalidating every cached flow
    # after each flow-mod, the flows kept 10 s idle), shown by keeping them 1 s instead.
    "segctl reactive (OVS max-idle 1 s)": [],
}
DEFAULT_ROWS = ["NORMAL", "simple_switch_13", "segctl reactive", "segctl stateful"]
# Row name -> Open vSwitch's other_config settings for that row only (put back after it).
OVS_SETTINGS = {"segctl reactive (OVS max-idle 1 s)": {"max-idle": "1000"}}
CPU_KEYS = ("client", "server", "controller", "ovs")
CPU_NAMES = {"client": "a client", "server": "the server", "controller": "the controller", "ovs": "ovs-vswitchd"}
SECTION = "## Issue 16 groundwork: connection setup on real OVS"


class BenchLab(Lab):
    """A Lab whose switches answer to segctl, to simple_switch_13, or to no controller at all."""

    def __init__(self, row: str, **kwargs):
        self.controller_kind = ROWS[row]
        self.ovs_settings = OVS_SETTINGS.get(row, {})
        extra = self.controller_kind if isinstance(self.controller_kind, list) else ()
        super().__init__(TOPOLOGY, DIRECTORY, POLICY, controller_args=extra, **kwargs)
        self.baseline: subprocess.Popen | None = None

    def start(self, settle_timeout: float = 60.0) -> None:
        from lab.net import ensure_ovs

        ensure_ovs()
        for key, value in self.ovs_settings.items():
            subprocess.run(["ovs-vsctl", "set", "Open_vSwitch", ".", f"other_config:{key}={value}"], check=True)
        if isinstance(self.controller_kind, list):
            return super().start(settle_timeout)
        from mininet.log import setLogLevel

        setLogLevel("warning")
        self._clean_leftovers()
        if self.controller_kind == "simple_switch_13":
            command = controller_command("simple_switch_13", self.of_port, self.state_dir, ("", ""))
            with open(os.path.join(self.state_dir, "ryu.log"), "ab") as log:
                self.baseline = subprocess.Popen(command, stdout=log, stderr=log, cwd=ROOT)
        self._build()
        if self.controller_kind is None:
            for switch in self.topology.switches:
                subprocess.run(["ovs-vsctl", "del-controller", switch], check=True)
                subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-flow", switch, "actions=NORMAL"], check=True)
        else:
            self._wait_connected(settle_timeout)
        self._start_servers()

    def _wait_connected(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = subprocess.run(
                ["ovs-vsctl", "--bare", "--columns=is_connected", "list", "controller"], capture_output=True, text=True
            ).stdout.split()
            if len(states) == len(self.topology.switches) and set(states) == {"true"}:
                return
            time.sleep(0.2)
        raise RuntimeError("the switches did not connect to simple_switch_13")

    def stop(self) -> None:
        super().stop()
        for key in self.ovs_settings:
            subprocess.run(["ovs-vsctl", "remove", "Open_vSwitch", ".", "other_config", key], check=True)
        if self.baseline is not None:
            self.baseline.terminate()
            self.baseline.wait(10)
            self.baseline = None

    def cpu_pids(self, servers: set[str]) -> dict[str, list[int]]:
        """The processes whose CPU share each phase reports: the servers of that phase, the
        controller, and ovs-vswitchd (the userspace datapath forwards every packet)."""
        pids = {"server": [p.pid for h, p in zip(self.net.hosts, self.servers) if h.name in servers]}
        controller = self.controller.process or self.baseline
        pids["controller"] = [controller.pid] if controller else []
        with open("/var/run/openvswitch/ovs-vswitchd.pid") as handle:
            pids["ovs"] = [int(handle.read())]
        return pids

    def flow_entries(self) -> int:
        """OpenFlow entries in every switch's tables, all together."""
        total = 0
        for switch in self.topology.switches:
            answer = subprocess.run(
                ["ovs-ofctl", "-O", "OpenFlow13", "dump-aggregate", switch], capture_output=True, text=True
            ).stdout
            total += int(re.search(r"flow_count=(\d+)", answer).group(1)) if "flow_count=" in answer else 0
        return total

    def packet_ins(self) -> int | None:
        """IPv4 packet-ins (the switches' counters: link probes and ARP are not the connections')."""
        if not isinstance(self.controller_kind, list):
            return None
        return self.ipv4_packet_ins()

    def floods(self) -> int | None:
        if not isinstance(self.controller_kind, list):
            return None
        return sum(e["kind"] == "flood" for e in self.controller.events())


def run_clients(lab: BenchLab, pairs: list, count: int, seconds: float) -> dict:
    """Every pair's client opens `count` connections, all clients at once; the merged result,
    with the CPU share (of one core) of the busiest client and of the other processes involved."""
    pids = lab.cpu_pids({server for _, server, _ in pairs})
    cpu_before, wall_before = {k: cpu_seconds(v) for k, v in pids.items()}, time.monotonic()
    processes = [
        lab.host(client).popen(
            [sys.executable, TRAFFIC, "connections", lab.ip(server), str(port), str(count), "--seconds", str(seconds)]
        )
        for client, server, port in pairs
    ]
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=seconds + 60)
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    wall = time.monotonic() - wall_before
    cpu = {k: (cpu_seconds(v) - cpu_before[k]) / wall for k, v in pids.items() if v}
    cpu["client"] = max(r["cpu"] / r["elapsed"] for r in results)
    setup = sorted(t for r in results for t in r["setup"])
    ok = sum(r["ok"] for r in results)
    return {
        "ok": ok,
        "failed": sum(r["failed"] for r in results),
        "rate": ok / max(r["elapsed"] for r in results),
        "p50": percentile(setup, 0.50),
        "p99": percentile(setup, 0.99),
        "cpu": cpu,
        "flow_entries": lab.flow_entries(),
    }


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes and their waited-for children."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        total += sum(int(f) for f in fields[11:15])
    return total / TICKS


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def measure(row: str, count: int, clients_count: int, seconds: float) -> dict:
    with BenchLab(row, of_port=free_port(), api_port=free_port()) as lab:
        run_clients(lab, ALLOWED, 20, seconds)  # warm-up: ARP, host bindings, MAC learning
        before = lab.packet_ins()
        one = run_clients(lab, ALLOWED[:1], count, seconds)
        middle = lab.packet_ins()
        many = run_clients(lab, ALLOWED, clients_count, seconds)
        after = lab.packet_ins()
        denied = lab.outcomes([DENIED])[0]
        floods = lab.floods()
    if before is not None and middle is not None and after is not None:
        one["packet_ins"] = (middle - before) * 1000 / max(1, one["ok"])
        many["packet_ins"] = (after - middle) * 1000 / max(1, many["ok"])
    return {"row": row, "one": one, "many": many, "denied": denied, "floods": floods}


def table(results: list[dict]) -> str:
    base = results[0]
    lines = [
        "| row | clients | conn/s | × NORMAL | setup p50 | × NORMAL | setup p99 | failed "
        "| packet-ins / 1,000 conn | flow entries after | flood events | web1 → db1 tcp/5432 "
        "| CPU: client, server, controller, ovs-vswitchd | bound by |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for key, clients in (("one", 1), ("many", len(ALLOWED))):
            m, b = result[key], base[key]
            pi = m.get("packet_ins")
            cpu = ", ".join(f"{m['cpu'][k]:.0%}" if k in m["cpu"] else "-" for k in CPU_KEYS)
            lines.append(
                f"| {result['row']} | {clients} | {m['rate']:,.0f} | {m['rate'] / b['rate']:.2f} × "
                f"| {m['p50'] * 1000:.2f} ms | {m['p50'] / b['p50']:.2f} × | {m['p99'] * 1000:.2f} ms "
                f"| {m['failed']} | {'n/a' if pi is None else f'{pi:,.0f}'} | {m['flow_entries']:,} "
                f"| {'n/a' if result['floods'] is None else result['floods']} "
                f"| {result['denied'] + ('' if result['floods'] is not None else ' (no policy)')} "
                f"| {cpu} | {bound(m['cpu'], clients)} |"
            )
    return "\n".join(lines)


def bound(cpu: dict[str, float], clients: int) -> str:
    """What most likely bounds a figure: a process busy on a whole core, else every core busy,
    else nothing is busy and each connection waits on the round trips of the one before."""
    busiest = max(cpu, key=lambda k: cpu[k])
    if cpu[busiest] >= 0.8:
        return f"{CPU_NAMES[busiest]} ({cpu[busiest]:.0%} of a core)"
    total = sum(cpu.values()) + cpu["client"] * (clients - 1)
    if total >= 0.85 * (os.cpu_count() or 1):
        return f"all {os.cpu_count()} cores ({total:.0%} in all)"
    return "round trips, one connection after another"


def goals(results: list[dict]) -> str:
    """Issue 16's goals: reactive ≥ 0.5 × NORMAL's connections/s; stateful ≥ 0.8 × and setup p50
    ≤ 1.2 × NORMAL's, ≤ 1 packet-in per 1,000 repeat connections; every row: the denied pair
    still denied and no flood event."""
    base = results[0]
    lines = []
    for result in results[1:]:
        if result["floods"] is None:
            continue
        stateful = "stateful" in result["row"]
        least = 0.8 if stateful else 0.5
        ratios = [result[k]["rate"] / base[k]["rate"] for k in ("one", "many")]
        met = "met" if min(ratios) >= least else "not met"
        pi = [result[k].get("packet_ins", float("nan")) for k in ("one", "many")]
        line = (
            f"- {result['row']}: conn/s ≥ {least} × NORMAL's: **{met}** ({ratios[0]:.2f} ×, {ratios[1]:.2f} ×); "
            f"denied pair still denied: **{'yes' if result['denied'] == 'deny' else 'NO: ' + result['denied']}**; "
            f"flood events: **{result['floods']}**; packet-ins per 1,000 connections: "
            + ", ".join(f"{p:,.1f}" for p in pi)
        )
        if stateful:
            p50 = [result[k]["p50"] / base[k]["p50"] for k in ("one", "many")]
            line += (
                f" (goal ≤ 1: **{'met' if max(pi) <= 1 else 'not met'}**); setup p50 ≤ 1.2 × NORMAL's: "
                f"**{'met' if max(p50) <= 1.2 else 'not met'}** ({p50[0]:.2f} ×, {p50[1]:.2f} ×)"
            )
        lines.append(line)
    return "\n".join(lines)


def save(text: str, results: list[dict], command: str, started: float) -> None:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    os.makedirs(RESULTS, exist_ok=True)
    stored = os.path.join(RESULTS, time.strftime("%Y-%m-%dT%H%MZ-connections.txt", time.gmtime(started)))
    with open(stored, "w") as handle:
        handle.write(f"`{command}` on {when}, in {time.time() - started:.0f} s.\nMachine: {machine()}.\n\n")
        handle.write(f"{text}\n\nRaw:\n")
        handle.writelines(json.dumps(result) + "\n" for result in results)
    about = (
        f"`{command}` (`make bench-mininet`, not part of `make bench`), run of {when}; whole output in "
        f"`{os.path.relpath(stored, ROOT)}`. Mininet on the OVS userspace datapath, linear.yaml (no loops, so "
        "NORMAL can run), the shipped policy; every row with its default settings and a fresh network. "
        f"1 client: web1 → app1 tcp/8080; {len(ALLOWED)} clients at once: that pair plus web2 → app1 tcp/8080, "
        "hr1 → hrapp1 tcp/443, jump1 → db1 tcp/22. A connection is connect, one byte there and back, close; "
        "setup is connect()'s duration; segctl stateful runs with `--pipeline auto` (every switch here is "
        "Open vSwitch 3.1, so every connection is set up on the stateful pipeline). Packet-ins: IPv4 ones, "
        "counted by the switches' punt entries (link probes and ARP left out). "
        "CPU is the share of one core over the phase (a client: the busiest "
        'one); "bound by" names a process at 80 % of a core or more, else all cores if they are busy, else '
        'the round trips of connections made one after another. "flow entries after": OpenFlow entries in '
        "the three switches after the phase (segctl's grow with every connection)."
    )
    section = "\n".join([SECTION, "", textwrap.fill(about, 100, break_on_hyphens=False), "", text, ""])
    with open(REPORT) as handle:
        report = handle.read()
    pattern = re.escape(SECTION) + r".*?(?=\n## )"
    anchor = "## Results\n"  # the hand-written sections come before the generated results
    if re.search(pattern, report, flags=re.S):
        report = re.sub(pattern, lambda _: section, report, flags=re.S)
    else:
        report = report.replace(anchor, section + "\n" + anchor, 1)
    with open(REPORT, "w") as handle:
        handle.write(report)
    print(f"wrote {stored} and {REPORT}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="connections of the single client")
    parser.add_argument("--clients-count", type=int, default=1000, help="connections of each of the 4 clients")
    parser.add_argument("--seconds", type=float, default=30.0, help="at most this long per client run")
    parser.add_argument(
        "--rows", default=",".join(DEFAULT_ROWS), help=f"comma-separated, NORMAL first, of: {', '.join(ROWS)}"
    )
    parser.add_argument("--save", action="store_true", help="write bench/results/ and BENCHMARKS.md")
    args = parser.parse_args(argv)
    started = time.time()
    results = []
    for row in args.rows.split(","):
        print(f"{row} ...", flush=True)
        results.append(measure(row, args.count, args.clients_count, args.seconds))
        print(json.dumps(results[-1]), flush=True)
    text = table(results) + "\n\n" + goals(results)
    print(text)
    if args.save:
        command = "python -m bench.connections " + " ".join(argv if argv is not None else sys.argv[1:])
        save(text, results, command.strip(), started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
