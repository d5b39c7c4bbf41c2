"""Default deny and exact allows with real TCP, UDP and ICMP, on every shipped topology."""

import pytest

ALLOWED = [
    ("web1", "app1", "tcp", 8080),  # web-to-app
    ("app1", "db1", "tcp", 5432),  # app-to-db
    ("hr1", "hrapp1", "tcp", 8005),  # hr-to-hr-app, inside a port range
    ("jump1", "printer1", "tcp", 22),  # admin-ssh to any
    ("db1", "mon1", "udp", 514),  # syslog from {env: prod}
    ("mon1", "web2", "icmp", None),  # monitoring-ping
]
DENIED = [
    ("web1", "app1", "tcp", 22),  # wrong port
    ("web1", "app1", "udp", 8080),  # wrong protocol (app1 serves udp/8080 too: only the network says no)
    ("app1", "web1", "tcp", 8080),  # wrong direction
    ("db1", "app1", "tcp", 5432),  # wrong direction
    ("web1", "db1", "tcp", 5432),  # other group
    ("hr1", "db1", "tcp", 5432),  # other group
    ("printer1", "mon1", "udp", 514),  # printer has no env: prod label
    ("web1", "mon1", "icmp", None),  # only monitoring may ping
    ("rogue", "db1", "tcp", 5432),  # unknown host
    ("rogue", "mon1", "udp", 514),  # unknown host
    ("jump1", "rogue", "tcp", 22),  # to an unknown host
]


def assert_outcomes(lab, expected: dict) -> None:
    """Each check (src, dst, proto, port) ends as expected: "allow", or "deny" (nothing of it
    arrived at the destination at all)."""
    checks = list(expected)
    wrong = [(check, seen) for check, seen in zip(checks, lab.outcomes(checks)) if seen != expected[check]]
    assert not wrong, f"unexpected outcomes: {wrong}\n{lab.controller.log()[-4000:]}"


def assert_policy_enforced(lab) -> None:
    assert_outcomes(lab, {**dict.fromkeys(ALLOWED, "allow"), **dict.fromkeys(DENIED, "deny")})


@pytest.mark.parametrize("module_lab", ["single", "linear", "leaf-spine"], indirect=True)
def test_policy_is_enforced_with_real_traffic(module_lab):
    assert_policy_enforced(module_lab)


@pytest.mark.parametrize("module_lab", ["linear"], indirect=True)
def test_allowed_connection_carries_bulk_tcp_both_ways(module_lab):
    """A real TCP stream through three switches: iperf3 from web1 to app1's port 8080 is
    not possible (the probe server owns it), so the echo server carries 1 MiB both ways."""
    web1 = module_lab.host("web1")
    out = web1.cmd(
        "python3 -c \"import socket;s=socket.create_connection(('10.0.0.21',8080),3);"
        "d=b'x'*1048576;s.sendall(d);n=0\n"
        "while n<len(d):\n  c=s.recv(65536)\n  n+=len(c)\n  assert c\nprint('echoed',n)\""
    )
    assert "echoed 1048576" in out, out
    events = module_lab.controller.events()
    allows = [e for e in events if e["kind"] == "allow" and e.get("src") == "web1" and e.get("dst_port") == 8080]
    assert allows and allows[-1]["switches"] == [1, 2], allows
