"""Attacks on the punt-opening band (priority 1150: SYN without ACK -> the port's meter -> the
controller). Each check looks at the destination's wire, and the flood checks at the
controller's `flood` events. One lab for the module (linear, the shipped policy)."""

import sys
import time

import pytest

from lab.net import TRAFFIC

from . import frames

LAB_TOPOLOGY = "linear"

SYN, FIN, RST, PSH, ACK, URG, ECE, CWR = 0x02, 0x01, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
ODD_OPENINGS = {
    "SYN": SYN,
    "SYN+FIN": SYN | FIN,
    "SYN+RST": SYN | RST,
    "SYN+URG": SYN | URG,
    "SYN+PSH": SYN | PSH,
    "SYN+FIN+RST+PSH+URG": SYN | FIN | RST | PSH | URG,
    "SYN+ECE+CWR": SYN | ECE | CWR,
}


def _floods(lab, since, port=None):
    return [
        e
        for e in lab.controller.events()
        if e["kind"] == "flood" and e["time"] >= since and (port is None or e.get("port") == port)
    ]


@pytest.fixture
def lab(module_lab):
    assert module_lab.reaches("web1", "app1", "tcp", 8080)
    return module_lab


def test_odd_flag_openings_to_a_denied_service_never_arrive(lab, tmp_path):
    """web1 may reach app1:8080 only. Every SYN-without-ACK flag combination (each from a fresh
    source port, so each is a new flow for the controller) to db1:5432 and to app1:22: none
    arrives. The same combinations to app1:8080 do arrive (policy allows that service)."""
    web1, app1, db1 = (lab.topology.host(n) for n in ("web1", "app1", "db1"))
    watch_db1 = lab.watch("db1", 3, src=web1.ip, proto=6)
    watch_app1_22 = lab.watch("app1", 3, src=web1.ip, proto=6, dport=22)
    forged = []
    for number, flags in enumerate(ODD_OPENINGS.values()):
        forged.append(frames.tcp(web1.mac, db1.mac, web1.ip, db1.ip, 41000 + number, 5432, flags))
        forged.append(frames.tcp(web1.mac, app1.mac, web1.ip, app1.ip, 42000 + number, 22, flags))
    for _ in range(3):
        lab.inject("web1", forged, str(tmp_path))
        time.sleep(0.3)
    assert watch_db1.count() == 0, "an odd-flag opening from web1 reached db1"
    assert watch_app1_22.count() == 0, "an odd-flag opening from web1 reached app1:22"
    # Control: the same flags to the allowed service arrive (the watcher can tell).
    watch_ok = lab.watch("app1", 2, src=web1.ip, proto=6, dport=8080)
    allowed = [
        frames.tcp(web1.mac, app1.mac, web1.ip, app1.ip, 43000 + number, 8080, flags)
        for number, flags in enumerate(ODD_OPENINGS.values())
    ]
    lab.inject("web1", allowed, str(tmp_path))
    assert watch_ok.count() >= 1


def test_a_first_fragment_carrying_a_syn_opens_nothing_policy_denies(lab, tmp_path):
    """A SYN cut into fragments (the first carries the TCP header and SYN) to a denied service,
    and a lone later fragment after it: nothing reaches db1."""
    web1, db1 = lab.topology.host("web1"), lab.topology.host("db1")
    header = frames.tcp(web1.mac, db1.mac, web1.ip, db1.ip, 44000, 5432, SYN)[34:]
    pieces = frames.fragments(web1.mac, db1.mac, web1.ip, db1.ip, 6, header + b"p" * 1200, ident=555, size=512)
    watch = lab.watch("db1", 3, src=web1.ip)
    for _ in range(3):
        lab.inject("web1", pieces, str(tmp_path))
        lab.inject("web1", [frames.later_fragment(web1.mac, db1.mac, web1.ip, db1.ip, 6, ident=556)], str(tmp_path))
        time.sleep(0.3)
    assert watch.count() == 0, "a fragment of web1's SYN reached db1"


def test_a_syn_from_a_spoofed_or_unknown_mac_never_arrives(lab, tmp_path):
    """rogue (s1 port 4, not in the directory) sends SYNs to app1:8080 with its own MAC and IP,
    with web1's MAC and IP (web1 is bound at s1 port 1), and with a random MAC: none arrives."""
    rogue, web1, app1 = (lab.topology.host(n) for n in ("rogue", "web1", "app1"))
    watch = lab.watch("app1", 3, proto=6, dport=8080)
    forged = [
        frames.tcp(rogue.mac, app1.mac, rogue.ip, app1.ip, 45000, 8080, SYN),
        frames.tcp(web1.mac, app1.mac, web1.ip, app1.ip, 45001, 8080, SYN),
        frames.tcp("02:00:00:00:77:77", app1.mac, web1.ip, app1.ip, 45002, 8080, SYN),
        frames.tcp(web1.mac, app1.mac, web1.ip, app1.ip, 45003, 8080, SYN | FIN),
    ]
    for _ in range(3):
        lab.inject("rogue", forged, str(tmp_path))
        time.sleep(0.3)
    assert watch.count() == 0, "a SYN from rogue's port reached app1"
    assert lab.reaches("web1", "app1", "tcp", 8080)  # the victim is unaffected


def test_a_syn_flood_of_allowed_looking_openings_is_capped_and_declared(lab, tmp_path):
    """web2 may open app1:8080. It sends 9000 SYNs, each from a new source port (each a new
    connection for the controller), 3000 a second: they reach the controller through
    punt-opening, past the port's packet-in budget (1000/s, burst 2000): the port is declared
    flooding, and then its new SYNs no longer reach app1. Other hosts keep connecting."""
    web2, app1 = lab.topology.host("web2"), lab.topology.host("app1")
    started = time.time()
    syns = [frames.tcp(web2.mac, app1.mac, web2.ip, app1.ip, 1024 + n, 8080, SYN, seq=n) for n in range(9000)]
    paths = frames.save(syns, tmp_path, "syn")
    arrived = lab.watch("app1", 7, src=web2.ip, proto=6, dport=8080, syn=True)
    blast = lab.host("web2").popen([sys.executable, TRAFFIC, "inject", "web2-eth0", *paths, "--rate", "3000"])
    blast.communicate(timeout=60)
    # At once, while its port is held: a fresh opening from web2 does not reach app1.
    watch = lab.watch("app1", 1.0, src=web2.ip, proto=6, dport=8080, syn=True)
    lab.inject("web2", [frames.tcp(web2.mac, app1.mac, web2.ip, app1.ip, 30000, 8080, SYN)], str(tmp_path))
    held = watch.count()
    floods = _floods(lab, started, port=2)
    assert floods and "packet-ins" in floods[0]["reason"], floods
    assert time.time() < floods[0]["time"] + 5, "the check came after the hold"
    assert held == 0, "a flooding port's new SYN reached app1 during its hold"
    got = arrived.count()
    assert got < 9000 * 0.6, f"{got} of 9000 SYNs of the flood reached app1"
    assert lab.reaches("app1", "db1", "tcp", 5432)  # the others keep connecting


def test_a_syn_scan_is_declared_a_flood_by_denials(lab, tmp_path):
    """hr1 SYN-scans db1 (nothing allowed): its port runs out of denials, and no SYN arrives."""
    hr1, db1 = lab.topology.host("hr1"), lab.topology.host("db1")
    started = time.time()
    syns = [frames.tcp(hr1.mac, db1.mac, hr1.ip, db1.ip, 50000, 1 + n, SYN | FIN) for n in range(400)]
    watch = lab.watch("db1", 3, src=hr1.ip)
    scan = lab.host("hr1").popen(
        [sys.executable, TRAFFIC, "inject", "hr1-eth0", *frames.save(syns, tmp_path, "scan"), "--rate", "2000"]
    )
    scan.communicate(timeout=30)
    time.sleep(0.5)
    floods = _floods(lab, started, port=3)
    assert floods and "denials" in floods[0]["reason"], lab.controller.events()[-5:]
    assert watch.count() == 0, "a scanning SYN from hr1 reached db1"


def test_a_syn_to_a_quarantined_host_never_arrives_and_release_restores_it(lab, tmp_path):
    """app1 quarantined: web1's SYNs (plain and odd) to app1:8080 do not reach it; released, they do."""
    web1, app1 = lab.topology.host("web1"), lab.topology.host("app1")
    assert lab.controller.cli("quarantine", "app1", "--reason", "attack test").returncode == 0
    try:
        time.sleep(0.5)
        watch = lab.watch("app1", 2.5, src=web1.ip, proto=6)
        forged = [
            frames.tcp(web1.mac, app1.mac, web1.ip, app1.ip, 46000 + n, 8080, flags)
            for n, flags in enumerate(ODD_OPENINGS.values())
        ]
        for _ in range(3):
            lab.inject("web1", forged, str(tmp_path))
            time.sleep(0.3)
        assert watch.count() == 0, "a SYN reached quarantined app1"
    finally:
        assert lab.controller.cli("release", "app1").returncode == 0
    # Released, app1 is reachable again (one failed probe in ~5 runs right after release, after
    # the flood test's 3000 connections to app1 were revoked: a second try is allowed).
    time.sleep(0.5)
    assert lab.reaches("web1", "app1", "tcp", 8080) or lab.reaches("web1", "app1", "tcp", 8080)
