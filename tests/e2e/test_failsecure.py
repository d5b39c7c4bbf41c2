"""Fail-secure: the controller is killed mid-traffic. Established connections keep flowing on
their entries, nothing new is forwarded while it is gone, and when it is back the switches hold
exactly what it knows: stale entries gone, denied flows still denied, open streams resumed."""

import json
import re
import subprocess
import time

from .test_quarantine import echoes, wait_for_echoes


def connection_cookies_on_switches(lab) -> set[str]:
    cookies = set()
    for name in lab.topology.switches:
        out = subprocess.run(
            ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", name], capture_output=True, text=True, check=True
        ).stdout
        cookies |= {m.group(1) for m in re.finditer(r"cookie=(0x[0-9a-f]+),.*priority=20000", out)}
    return cookies


def test_killed_controller_fails_secure_and_reconciles_on_return(make_lab, tmp_path):
    lab = make_lab("linear")
    log = tmp_path / "stream.log"
    stream = lab.stream("web1", "app1", 8080, str(log))
    try:
        assert wait_for_echoes(log, 0)
        lab.controller.kill()
        killed = time.time()
        # Established: flows on its entries. New, even if policy allows it: nothing.
        assert wait_for_echoes(log, killed + 1.0), "the open stream stopped when the controller died"
        assert not lab.reaches("app1", "db1", "tcp", 5432)
        assert not lab.reaches("app1", "web1", "tcp", 8080)

        lab.controller.start()
        lab.wait_for_fabric(60)
        back = time.time()
        assert wait_for_echoes(log, back + 1.0, timeout=15), "the stream did not resume after the restart"
        assert lab.reaches("app1", "db1", "tcp", 5432)
        assert not lab.reaches("app1", "web1", "tcp", 8080)  # still denied

        flows = json.loads(lab.controller.cli("flows", "--json").stdout)["flows"]
        known = {flow["cookie"] for flow in flows}
        on_switches = connection_cookies_on_switches(lab)
        assert on_switches, "no connection entry on any switch: the stream cannot be flowing on them"
        assert on_switches <= known, "a stale entry survived the reconnect"
        streams = [f for f in flows if (f["src"], f["dst"], f["dst_port"]) == ("web1", "app1", 8080)]
        assert streams, "the resumed stream's connection is unknown to the controller"
        gap = [b - a for a, b in zip(echoes(log), echoes(log)[1:]) if a > back - 5]
        assert max(gap) < 6, f"the stream stalled {max(gap):.1f} s around the restart"
    finally:
        stream.kill()
