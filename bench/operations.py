"""Operational benchmarks: what an engineer waits for.

    python -m bench.operations

- quarantine of a host with 1,000 installed connections, until every switch confirmed it
  (a real segctl process, 16 emulated switches that answer barriers, the REST API);
- a policy reload that revokes 10,000 connections, same set-up;
- controller memory per connection with 10,000 hosts and 100,000 connections (the core in
  this process, RSS before and after)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

from segctl.core.fabric import EDGE_SETTLE

from . import emulator
from .flowsetup import ROOT, controller_command, free_port, wait_listening
from .workload import Flow, Workload


def api(port: int, token: str, method: str, path: str, body: dict | None = None) -> tuple[float, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as answer:
        payload = json.loads(answer.read())
    return time.perf_counter() - started, payload


async def _open_connections(switches, counts: dict[int, int], timeout: float = 60.0) -> None:
    for switch in switches:
        if counts.get(switch.dpid):
            switch.start(count=counts[switch.dpid])
    deadline = time.monotonic() + timeout
    while any(s.outstanding for s in switches):
        if time.monotonic() > deadline:
            raise RuntimeError("the controller did not answer every packet-in")
        await asyncio.sleep(0.05)


async def _scenario(workload: Workload, of_port: int, api_port: int, token: str, policy_path: str) -> dict:
    loop = asyncio.get_running_loop()
    victim = workload.hosts[0]  # on switch 1
    peers = [h for h in workload.hosts if h.switch == victim.switch and h is not victim]
    victim_flows = [Flow(victim, p, port, True) for p in peers if (port := workload.allowed_port(victim, p))]
    plan = []
    for dpid in range(1, workload.switches + 1):
        flows = victim_flows if dpid == victim.switch else workload.flows(dpid, 1.0)
        plan.append((dpid, [h for h in workload.hosts if h.switch == dpid], flows, workload.ports_per_switch))
    switches = await emulator.connect("127.0.0.1", of_port, plan, window=1)
    await asyncio.sleep(EDGE_SETTLE)  # hosts are not bound while the switches' ports settle
    for switch in switches:
        switch.announce_hosts()
    await asyncio.sleep(1.5)
    results = {}

    await _open_connections(switches, {victim.switch: 1000})
    _, health = await loop.run_in_executor(None, api, api_port, token, "GET", "/v1/health")
    results["quarantine_connections"] = health["connections"]
    seconds, answer = await loop.run_in_executor(
        None, api, api_port, token, "POST", "/v1/quarantine", {"host": victim.name, "reason": "benchmark"}
    )
    results["quarantine_seconds"] = seconds
    results["quarantine_switches"] = len(answer["switches"]["confirmed"])
    results["quarantine_unconfirmed"] = len(answer["switches"]["unconfirmed"])
    _, health = await loop.run_in_executor(None, api, api_port, token, "GET", "/v1/health")
    results["quarantine_left"] = health["connections"]

    # The quarantined victim's switch sits this one out: its flows all come from the victim.
    others = [dpid for dpid in range(1, workload.switches + 1) if dpid != victim.switch]
    await _open_connections(switches, {dpid: -(-10_000 // len(others)) for dpid in others})
    _, health = await loop.run_in_executor(None, api, api_port, token, "GET", "/v1/health")
    results["reload_connections"] = health["connections"]
    with open(policy_path, "w") as handle:
        handle.write("mode: enforce\nrules: []\n")  # nothing is allowed any more
    seconds, answer = await loop.run_in_executor(None, api, api_port, token, "POST", "/v1/policy/reload")
    results["reload_seconds"] = seconds
    results["reload_revoked"] = answer["revoked"]
    results["reload_switches"] = len(answer["switches"]["confirmed"])
    for switch in switches:
        switch.transport.close()
    return results


def switch_operations(workload: Workload) -> dict:
    with tempfile.TemporaryDirectory(prefix="segctl-ops-") as folder:
        directory, policy = workload.write(folder)
        of_port, api_port = free_port(), free_port()
        command = controller_command("segctl", of_port, folder, (directory, policy), api_port=api_port)
        with open(os.path.join(folder, "controller.log"), "w") as log:
            process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            try:
                wait_listening(of_port, process)
                wait_listening(api_port, process)
                with open(os.path.join(folder, "api-token")) as handle:
                    token = handle.read().strip().split(":", 1)[1]
                return asyncio.run(_scenario(workload, of_port, api_port, token, policy))
            finally:
                process.terminate()
                process.wait(10)


def rss_bytes() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def connection_memory(hosts: int = 10_000, connections: int = 100_000) -> dict:
    """The core alone: bytes of RSS per connection, and per host binding."""
    from segctl.core.controller import Controller
    from segctl.core.directory import Directory, Host
    from segctl.core.policy import parse_policy
    from segctl.core.yamlsrc import load_yaml_text

    from . import ofwire as of
    from .workload import policy_text

    workload = Workload(hosts, 16, 1000)
    directory = Directory(Host(h.name, h.mac, h.ip, {"role": h.role}) for h in workload.hosts)
    policy = parse_policy([(load_yaml_text(policy_text(1000), "p.yaml"), "p.yaml")])
    core = Controller(directory, policy)
    core.events._ring = core.events._ring.__class__(maxlen=1)  # the ring is bounded anyway
    # Two spines, 16 leaves: connections cross three switches.
    for dpid in range(1, 17):
        core.switch_up(dpid, list(range(1, workload.ports_per_switch + 1)) + [901, 902], 0.0)
    for spine in (101, 102):
        core.switch_up(spine, list(range(1, 17)), 0.0)
    for dpid in range(1, 17):
        core.link_up(dpid, 901, 101, dpid, 0.0)
        core.link_up(dpid, 902, 102, dpid, 0.0)
    now = EDGE_SETTLE  # hosts are bound once the switches' ports have settled
    for h in workload.hosts:
        core.packet_in(h.switch, h.port, of.arp_announce(h.mac, h.ip), now)
    pairs = []
    for src in workload.hosts[:400]:
        for dst in workload.hosts[400:1400]:
            port = workload.allowed_port(src, dst)
            if port is not None and src.switch != dst.switch:
                pairs.append((src, dst, port))
    gc.collect()
    before = rss_bytes()
    made = 0
    src_port = 1024
    while made < connections:
        for src, dst, port in pairs:
            frame = of.tcp_syn(src.mac, dst.mac, src.ip, dst.ip, src_port, port)
            core.packet_in(src.switch, src.port, frame, now)
            made += 1
            if made == connections:
                break
        src_port += 1
    gc.collect()
    after = rss_bytes()
    assert len(core.connections) == connections, len(core.connections)
    path_lengths = {len(c.path) for c in core.connections.by_id.values()}
    return {"connections": connections, "bytes_per_connection": (after - before) / connections, "hops": path_lengths}


def main() -> int:
    workload = Workload(1000, 16, 1000)
    results = switch_operations(workload)
    memory = connection_memory()
    print("| operation | result |")
    print("|---|---|")
    print(
        f"| quarantine a host with {results['quarantine_connections']:,} connections | "
        f"{results['quarantine_seconds'] * 1000:.1f} ms until {results['quarantine_switches']} switches confirmed "
        f"({results['quarantine_unconfirmed']} unconfirmed); {results['quarantine_left']} connections left |"
    )
    print(
        f"| reload revoking {results['reload_revoked']:,} of {results['reload_connections']:,} connections | "
        f"{results['reload_seconds'] * 1000:.0f} ms until {results['reload_switches']} switches confirmed |"
    )
    hops = "/".join(map(str, sorted(memory["hops"])))
    print(
        f"| memory, 10,000 hosts and {memory['connections']:,} connections ({hops} switches each) | "
        f"{memory['bytes_per_connection']:.0f} bytes per connection |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
