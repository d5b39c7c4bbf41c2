"""Builds a lab topology in Mininet (OVS userspace datapath, OpenFlow 1.3, fail-secure), starts
a segctl controller for it, and runs traffic probes between its hosts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial

from segctl.config import Sources, load_sources
from segctl.core.fabric import EDGE_SETTLE

from .proc import stop_process
from .topology import LabTopology, load_topology

TRAFFIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "traffic.py")
DEFAULT_TCP_PORTS = (22, 80, 443, 5432, 8000, 8080, 9100)
DEFAULT_UDP_PORTS = (53, 514, 5000)


def ensure_ovs() -> None:
    """Start Open vSwitch unless it already answers."""
    if subprocess.run(["ovs-vsctl", "--timeout=2", "show"], capture_output=True).returncode != 0:
        subprocess.run(
            ["/usr/share/openvswitch/scripts/ovs-ctl", "start", "--system-id=random"],
            check=True,
            capture_output=True,
        )


class ControllerProcess:
    """A `segctl run` process of our own, with its state directory and log."""

    def __init__(
        self,
        directory: str,
        policy: str,
        of_port: int,
        state_dir: str,
        extra_args=(),
        api_port: int | None = None,
        api_ca: str | None = None,
    ):
        self.api_port = api_port or of_port + 1000
        self.api_ca = api_ca
        self.args = [
            sys.executable,
            "-m",
            "segctl",
            "run",
            "--directory",
            directory,
            "--policy",
            policy,
            "--of-port",
            str(of_port),
            "--of-host",
            "127.0.0.1",
            "--state-dir",
            state_dir,
            *extra_args,
        ]
        self.args += ["--api-port", str(self.api_port)]
        self.api = f"{'https' if api_ca else 'http'}://127.0.0.1:{self.api_port}"
        self.token_file = os.path.join(state_dir, "api-token")
        self.state_dir = state_dir
        self.log_path = os.path.join(state_dir, "controller.log")
        self.events_path = os.path.join(state_dir, "events.jsonl")
        self.process: subprocess.Popen | None = None
        self.started = 0.0

    def start(self, timeout: float = 30.0) -> None:
        os.makedirs(self.state_dir, exist_ok=True)
        self.started = time.time()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"controller exited with {self.process.returncode}:\n{self.log()}")
            if "listening for OpenFlow" in self.log():
                return
            time.sleep(0.1)
        raise RuntimeError(f"controller did not start:\n{self.log()}")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """Run a `segctl` client command against this controller's API."""
        command = [sys.executable, "-m", "segctl", *args, "--api", self.api, "--api-token-file", self.token_file]
        if self.api_ca:
            command += ["--api-ca", self.api_ca]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return ""

    def events(self) -> list[dict]:
        """The controller's latest events: from its API while it runs (always current), else
        from its events file (flushed every 0.1 s and on exit)."""
        if self.running():
            try:
                return self._api_events()
            except OSError:
                pass
        try:
            with open(self.events_path, encoding="utf-8") as handle:
                return [json.loads(line) for line in handle if line.strip()]
        except OSError:
            return []

    def _api_events(self) -> list[dict]:
        import ssl
        import urllib.request

        with open(self.token_file, encoding="utf-8") as handle:
            token = handle.readline().strip().split(":", 1)[-1]
        request = urllib.request.Request(
            f"{self.api}/v1/events?limit=10000", headers={"Authorization": f"Bearer {token}"}
        )
        context = ssl.create_default_context(cafile=self.api_ca) if self.api_ca else None
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return json.loads(answer.read())["events"]

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: the controller dies without a word to anyone, as in a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Lab:
    """One Mininet network for one topology file, driven by one segctl controller."""

    def __init__(
        self,
        topology: str,
        directory: str,
        policy: str,
        of_port: int = 6653,
        state_dir: str | None = None,
        controller_args=(),
        api_port: int | None = None,
        addressing: str | None = None,
        tls: bool = False,
    ):
        """`addressing` is the directory the lab hosts take their MAC and IP from (the
        controller's directory unless given: tests run controllers on other directories).
        `tls`: switches reach the controller over mutually authenticated TLS (certificates
        from a lab CA), and the API is served over HTTPS."""
        self.directory_path, self.policy_path = directory, policy
        self.directory, self.policy = load_sources(Sources(directory, policy))
        lab_directory = self.directory
        if addressing is not None:
            lab_directory = load_sources(Sources(addressing, policy))[0]
        self.topology: LabTopology = load_topology(topology, lab_directory)
        self.of_port = of_port
        self._own_state = state_dir is None
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="segctl-lab-")
        self.tls = None
        api_ca = None
        if tls:
            from .certs import LabPki

            pki = LabPki(os.path.join(self.state_dir, "pki"))
            controller_cert, controller_key = pki.issue("controller")
            switch_cert, switch_key = pki.issue("switch")
            self.tls = {"ca": pki.ca_cert, "switch_cert": switch_cert, "switch_key": switch_key, "pki": pki}
            controller_args = [
                *controller_args,
                *("--of-cert", controller_cert, "--of-key", controller_key, "--of-ca", pki.ca_cert),
                *("--api-cert", controller_cert, "--api-key", controller_key),
            ]
            api_ca = pki.ca_cert
        self.controller = ControllerProcess(
            directory, policy, of_port, self.state_dir, controller_args, api_port, api_ca
        )
        self.net = None
        self.servers: list = []

    # -- life cycle --------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, settle_timeout: float = 60.0) -> None:
        from mininet.log import setLogLevel

        setLogLevel("warning")
        ensure_ovs()
        self._clean_leftovers()
        self.controller.start()
        self._build()
        self.wait_for_fabric(settle_timeout)
        self._start_servers()

    def _clean_leftovers(self) -> None:
        for name in self.topology.switches:
            subprocess.run(["ovs-vsctl", "--if-exists", "del-br", name], capture_output=True)
        for host in self.topology.hosts:
            subprocess.run(["ip", "netns", "pids", host.name], capture_output=True)
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        for line in links.splitlines():
            ifname = line.split(":")[1].strip().split("@")[0]
            if any(ifname.startswith(f"{s}-eth") for s in self.topology.switches):
                subprocess.run(["ip", "link", "del", ifname], capture_output=True)

    def _build(self) -> None:
        from mininet.net import Mininet
        from mininet.node import OVSSwitch, RemoteController

        switch = partial(OVSSwitch, datapath="user", protocols="OpenFlow13", failMode="secure")
        net = Mininet(controller=None, switch=switch, autoSetMacs=False, build=False, waitConnected=False)

        class SegctlController(RemoteController):
            def checkListening(self):
                """Mininet probes the port with telnet and decodes the OpenFlow hello as UTF-8,
                which fails at random; we already know the controller listens."""

        protocol = "tcp"
        if self.tls:
            protocol = "ssl"
            subprocess.run(
                ["ovs-vsctl", "set-ssl", self.tls["switch_key"], self.tls["switch_cert"], self.tls["ca"]], check=True
            )
        net.addController("c0", controller=SegctlController, ip="127.0.0.1", port=self.of_port, protocol=protocol)
        for name, dpid in self.topology.switches.items():
            net.addSwitch(name, dpid=f"{dpid:016x}")
        for host in self.topology.hosts:
            net.addHost(host.name, ip=f"{host.ip}/24", mac=host.mac)
            net.addLink(host.name, host.switch, port2=host.port)
        for a, b in self.topology.links:
            net.addLink(a, b)
        self.net = net
        net.build()
        net.start()
        for host in net.hosts:
            for command in (
                "sysctl -qw net.ipv6.conf.all.disable_ipv6=1",
                "sysctl -qw net.ipv6.conf.default.disable_ipv6=1",
                f"ethtool -K {host.defaultIntf()} tx off",
            ):
                host.cmd(command)

    def wait_for_fabric(self, timeout: float) -> None:
        """Until the controller has every switch up and every link discovered."""
        want_switches = set(self.topology.switches.values())
        want_links = len(self.topology.links)
        deadline = time.monotonic() + timeout
        up, links = set(), 0
        while time.monotonic() < deadline:
            events = [e for e in self.controller.events() if e["time"] >= self.controller.started]
            up = {e["dpid"] for e in events if e["kind"] == "switch-up"}
            link_events = [e for e in events if e["kind"] in ("link-up", "link-down")]
            links = link_events[-1]["links"] if link_events else 0
            if want_switches <= up and links == want_links:
                # and the edge ports bind hosts (EDGE_SETTLE after the last switch came up)
                last_up = max(e["time"] for e in events if e["kind"] == "switch-up")
                time.sleep(max(0.0, last_up + EDGE_SETTLE - time.time()))
                return
            if not self.controller.running():
                raise RuntimeError(f"controller died:\n{self.controller.log()}")
            time.sleep(0.2)
        raise RuntimeError(
            f"fabric not ready after {timeout}s: switches up {sorted(up)}, links "
            f"{links}/{want_links}\n{self.controller.log()[-3000:]}"
        )

    def _start_servers(self) -> None:
        # Every port a rule names is served over both TCP and UDP, so that a probe of the wrong
        # protocol finds a listener too: denied must mean "did not get there", not "no one home".
        tcp, udp = set(DEFAULT_TCP_PORTS), set(DEFAULT_UDP_PORTS)
        for rule in self.policy.rules:
            for low, high in rule.ports or ():
                ports = range(low, min(high, low + 4) + 1)
                tcp.update(ports)
                udp.update(ports)
        for host in self.net.hosts:
            self.servers.append(
                host.popen(
                    [
                        sys.executable,
                        TRAFFIC,
                        "serve",
                        "--tcp",
                        ",".join(map(str, sorted(tcp))),
                        "--udp",
                        ",".join(map(str, sorted(udp))),
                    ]
                )
            )
        time.sleep(0.5)

    def restart_controller(self, timeout: float = 60.0) -> None:
        """Stop the controller and start it again on the same state; wait for the fabric."""
        self.controller.stop()
        self.controller.start()
        self.wait_for_fabric(timeout)

    def stream(self, src: str, dst: str, port: int, out: str):
        """A busy TCP connection from src to dst:port; each echo's time is appended to `out`."""
        return self.host(src).popen([sys.executable, TRAFFIC, "stream", self.ip(dst), str(port), "--out", out])

    def stop(self) -> None:
        for server in self.servers:
            server.kill()
            server.wait()
        self.servers = []
        if self.net is not None:
            self.net.stop()
            self.net = None
        if self.tls:
            subprocess.run(["ovs-vsctl", "del-ssl"], capture_output=True)
        self.controller.stop()
        if self._own_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    # -- traffic -----------------------------------------------------------------------------
    def host(self, name: str):
        return self.net.get(name)

    def ip(self, name: str) -> str:
        return self.topology.host(name).ip

    def outcomes(self, checks: list, timeout: float = 2.0, size: int = 0) -> list[str]:
        """Run every (src, dst, proto, port) check at once (dst: a host name) and say what
        happened to each: "allow" (the round trip completed), "deny" (nothing of it arrived at
        the destination: each destination counts what reaches it while the checks run), or
        "one-way" (it arrived, no answer came back: a leak a round trip alone would miss).
        `size`: UDP datagrams and pings of that many bytes (past the MTU: fragments)."""
        tallies = {dst: self._tally(dst) for dst in dict.fromkeys(dst for _, dst, _, _ in checks)}
        try:
            round_trips = self._round_trips(checks, timeout, size)
        finally:
            time.sleep(0.3)  # the last packets of a check that timed out may still be on their way
            arrived = {dst: tally.stop() for dst, tally in tallies.items()}
        numbers = {"tcp": 6, "udp": 17, "icmp": 1}
        outcomes = []
        for (src, dst, proto, port), round_trip in zip(checks, round_trips):
            key = f"{self.ip(src)}:{numbers[proto]}:{port if proto != 'icmp' else 8}"
            outcomes.append("allow" if round_trip else ("one-way" if arrived[dst].get(key) else "deny"))
        return outcomes

    def _round_trips(self, checks: list, timeout: float, size: int) -> list[bool]:
        by_src: dict[str, list] = {}
        for position, (src, dst, proto, port) in enumerate(checks):
            by_src.setdefault(src, []).append(f"{position}:{self.ip(dst)}:{proto}:{port or 0}")
        processes = [
            self.host(src).popen(
                [sys.executable, TRAFFIC, "check", "--timeout", str(timeout), "--size", str(size), *targets]
            )
            for src, targets in by_src.items()
        ]
        results: dict[int, bool] = {}
        for process in processes:
            out, _ = process.communicate(timeout=timeout * 4 + 30)
            for line in out.decode().splitlines():
                if line.startswith("{"):
                    item = json.loads(line)
                    results[int(item["id"])] = item["ok"]
        missing = [checks[position] for position in range(len(checks)) if position not in results]
        if missing:
            raise RuntimeError(f"these checks produced no result (a probe failed): {missing}")
        return [results[position] for position in range(len(checks))]

    def _tally(self, host: str) -> _Tally:
        return _Tally(self.host(host).popen([sys.executable, TRAFFIC, "tally", f"{host}-eth0"], stdout=subprocess.PIPE))

    def probe(self, checks: list, timeout: float = 2.0, size: int = 0) -> list[bool]:
        """Whether each check's round trip completed; a check that reached its destination
        without completing raises OneWayLeak (see outcomes)."""
        outcomes = self.outcomes(checks, timeout, size)
        leaks = [check for check, outcome in zip(checks, outcomes) if outcome == "one-way"]
        if leaks:
            raise OneWayLeak(f"arrived at the destination, but no answer came back: {leaks}")
        return [outcome == "allow" for outcome in outcomes]

    def dump_flows(self) -> str:
        """Every switch's entries, as `ovs-ofctl dump-flows` prints them (it must answer)."""
        return "".join(
            subprocess.run(
                ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", name], capture_output=True, text=True, check=True
            ).stdout
            for name in self.topology.switches
        )

    def ipv4_packet_ins(self) -> int:
        """IPv4 packets the switches sent to the controller so far, by their punt entries'
        counters (the controller's own count includes its link probes and ARP)."""
        counted = re.findall(r"n_packets=(\d+),.*[ ,](?:ip|tcp|udp|icmp)[ ,].*actions=.*CONTROLLER", self.dump_flows())
        return sum(map(int, counted))

    def reaches(
        self, src: str, dst: str, proto: str = "icmp", port: int | None = None, timeout: float = 2.0, size: int = 0
    ) -> bool:
        """True: the round trip completed; False: nothing of it arrived at `dst`; a check that
        arrived without an answer raises OneWayLeak, so `assert not lab.reaches(...)` means
        nothing got through, not merely that nothing came back."""
        return self.probe([(src, dst, proto, port)], timeout, size)[0]

    def watch(self, host: str, seconds: float, **filters):
        """Start counting the IPv4 packets that arrive at `host` (see traffic.py watch: src, proto,
        dport, syn, icmp_type, later_fragment); `.count()` on the result waits and answers."""
        args = [sys.executable, TRAFFIC, "watch", f"{host}-eth0", str(seconds)]
        for name, value in filters.items():
            flag = "--" + name.replace("_", "-")
            args += [flag] if value is True else [flag, str(value)]
        return _Watch(self.host(host).popen(args, stdout=subprocess.PIPE))

    def inject(self, host: str, frames: list[bytes], folder: str, count: int = 1, rate: float = 0.0) -> None:
        """Send hand-made frames out of a host's interface, as an attacker on it would: each in
        turn, `count` times over, at most `rate` a second."""
        paths = []
        for number, frame in enumerate(frames):
            paths.append(os.path.join(folder, f"{host}-{time.monotonic_ns()}-{number}.bin"))
            with open(paths[-1], "wb") as handle:
                handle.write(frame)
        options = f"--count {count} --rate {rate}"
        self.host(host).cmd(f"{sys.executable} {TRAFFIC} inject {host}-eth0 {' '.join(paths)} {options}")


class OneWayLeak(AssertionError):
    """A check's packets reached the destination although no answer came back."""


class _Tally:
    def __init__(self, process):
        self.process = process
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the arrival counter did not start")

    def stop(self) -> dict[str, int]:
        self.process.terminate()
        out, _ = self.process.communicate(timeout=30)
        lines = out.decode().strip().splitlines()
        if not lines:
            raise RuntimeError("the arrival counter printed nothing")
        return json.loads(lines[-1])["tally"]


class _Watch:
    def __init__(self, process):
        self.process = process
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the packet watcher did not start")

    def count(self) -> int:
        out, _ = self.process.communicate(timeout=60)
        lines = out.decode().strip().splitlines()
        if not lines:
            raise RuntimeError("the packet watcher printed nothing")
        return json.loads(lines[-1])["count"]
