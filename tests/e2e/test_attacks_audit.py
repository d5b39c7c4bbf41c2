"""Attacks on the flow-table audit (issue 9), on real Open vSwitch: what the audit does to the
entries segctl itself wrote, as Open vSwitch reports them back."""

import subprocess
import time

AUDIT = ["--audit-interval", "2"]


def ofctl(*args: str) -> str:
    return subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args], capture_output=True, text=True, check=True).stdout


def fragment_entries(lab) -> dict[str, list[str]]:
    """Each switch's later-fragment entries (segctl's FRAGMENTS band, cookie kind 10)."""
    return {
        name: [line for line in ofctl("dump-flows", name).splitlines() if "nw_frag=later" in line]
        for name in lab.topology.switches
    }


def test_the_audit_deletes_segctls_own_fragment_entries_and_a_host_can_fill_the_audit_with_drift(make_lab):
    """A host sending fragmented datagrams of an allowed flow made every audit delete segctl's own
    fragment entries (OVS reports ip_frag=3/3 as ip_frag=3), filling the audit with drift."""
    lab = make_lab("linear", controller_args=AUDIT)
    assert lab.reaches("web2", "mon1", "udp", 514, size=3000), "a 3 kB datagram of an allowed flow was lost"
    installed = {name: lines for name, lines in fragment_entries(lab).items() if lines}
    assert installed, "no fragment entries were installed: the test sees nothing"
    time.sleep(5)  # two audits of every switch; the entries idle out only after 30 s
    drift = sorted({f"{e['action']}: {e['entry']}" for e in lab.controller.events() if e["kind"] == "drift"})
    assert drift == [], "the audit found drift in what segctl itself wrote:\n" + "\n".join(drift)
    left = {name: lines for name, lines in fragment_entries(lab).items() if lines}
    assert left.keys() == installed.keys(), f"segctl's fragment entries were deleted by its own audit: {left}"
