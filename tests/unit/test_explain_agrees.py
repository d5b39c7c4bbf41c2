"""`segctl explain` and the running controller call one decide(): on random policies and random
first packets, what explain answers is what the controller does on the (fake) wire."""

from hypothesis import given
from hypothesis import strategies as st

from segctl.core.explain import explain_first_packet
from segctl.core.flows import FlowAdd, PacketOut
from segctl.core.pipeline import PRIORITY_GUARD
from segctl.core.verdict import Allow, Deny

from ..fakenet import APP, ATTACHED, DB, WEB, Net, icmp_echo, tcp

HOSTS = {"web": (WEB, "10.0.0.1"), "db": (DB, "10.0.0.2"), "app": (APP, "10.0.0.3")}
ROLES = ("web", "db", "app")
SERVICES = [("tcp", 22), ("tcp", 5432), ("tcp", 8080), ("udp", 53), ("udp", 5432), ("icmp", 8), ("icmp", 13)]

rules = st.lists(
    st.tuples(st.sampled_from(ROLES + ("any",)), st.sampled_from(ROLES + ("any",)), st.sampled_from(SERVICES)),
    max_size=6,
)


def policy_text(mode: str, chosen) -> str:
    lines = [f"mode: {mode}", "rules:"] if chosen else [f"mode: {mode}", "rules: []"]
    for n, (src, dst, (proto, port)) in enumerate(chosen):
        ends = " ".join(
            f"{side}: {'any' if role == 'any' else '{role: ' + role + '}'},"
            for side, role in (("from", src), ("to", dst))
        )
        opening = f"icmp_types: [{port}]" if proto == "icmp" else f"ports: [{port}]"
        lines.append(f"  - {{name: r{n}, {ends} proto: {proto}, {opening}}}")
    return "\n".join(lines) + "\n"


def first_packet(src: str, dst: str, proto: str, port: int) -> bytes:
    (src_mac, src_ip), (dst_mac, dst_ip) = HOSTS[src], HOSTS[dst]
    if proto == "icmp":
        data = bytearray(icmp_echo(src_mac, dst_mac, src_ip, dst_ip))
        data[34] = port  # the ICMP type
        return bytes(data)
    return tcp(src_mac, dst_mac, src_ip, dst_ip, 49152, port, proto=6 if proto == "tcp" else 17)


@given(
    mode=st.sampled_from(["enforce", "monitor"]),
    chosen=rules,
    src=st.sampled_from(ROLES),
    dst=st.sampled_from(ROLES),
    service=st.sampled_from(SERVICES),
)
def test_explain_answers_what_the_controller_does_with_the_first_packet(mode, chosen, src, dst, service):
    if src == dst:
        return
    proto, port = service
    net = Net(policy_text(mode, chosen))
    net.announce()
    core = net.core
    verdict = explain_first_packet(
        core.directory, core.policy, core.directory.find(src), core.directory.find(dst), proto, port
    )
    sent = net.send(*ATTACHED[HOSTS[src][0]], first_packet(src, dst, proto, port))
    opened = len(core.connections) == 1
    denied = any(isinstance(m, FlowAdd) and m.priority == PRIORITY_GUARD and not m.actions for m in sent)
    forwarded = any(isinstance(m, PacketOut) for m in sent)
    assert isinstance(verdict, (Allow, Deny))
    if isinstance(verdict, Allow):
        assert opened and forwarded and not denied
        assert verdict.rule is None if mode == "monitor" and verdict.would_deny else verdict.rule is not None
        (connection,) = core.connections
        assert connection.rule == (verdict.rule.name if verdict.rule else None)
    else:
        assert denied and not opened and not forwarded
