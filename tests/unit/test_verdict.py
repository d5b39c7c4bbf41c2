"""The verdict on a first packet (segctl.core.verdict.decide) where what it says goes beyond
allow or deny: monitor mode's note on a packet still waiting for its destination, or with no
path to it, and the detailed reason `segctl explain` gives."""

from segctl.core.packets import parse_frame
from segctl.core.verdict import MONITOR_ONLY, Deny, Hold, Unreachable, decide

from ..fakenet import DB, LINKS, POLICY, WEB, Net, arp_request, tcp

SYN_TO_SSH = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 22)  # no rule allows it


def verdict(net, data, detailed=False):
    web = net.core.directory.lookup_mac(WEB)
    return decide(net.core.ledger, (1, 1), parse_frame(data), data, web, detailed)


def test_monitor_mode_notes_what_it_would_deny_while_the_destination_is_located():
    net = Net("mode: monitor\n" + POLICY)
    net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))  # db not located yet
    held = verdict(net, SYN_TO_SSH)
    assert isinstance(held, Hold) and held.would_deny == MONITOR_ONLY
    allowed = verdict(net, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432))
    assert isinstance(allowed, Hold) and allowed.would_deny is None
    net.send(1, 1, SYN_TO_SSH)
    # held, not yet forwarded: nothing recorded; decided again (and recorded once) on its release
    assert [e for e in net.core.events.latest(100) if e["kind"] in ("allow", "deny")] == []
    net.send(2, 1, arp_request(DB, "10.0.0.2", "10.0.0.2"))
    (event,) = [e for e in net.core.events.latest(100) if e["kind"] == "deny"]
    assert (event["verdict"], event["reason"], event["dst"]) == ("monitor", MONITOR_ONLY, "db")


def test_monitor_mode_notes_what_it_would_deny_when_no_path_leads_to_the_destination():
    net = Net("mode: monitor\n" + POLICY)
    net.announce()
    for link in LINKS:
        net.core.link_down(*link, net.now)
    unreachable = verdict(net, SYN_TO_SSH)
    assert isinstance(unreachable, Unreachable) and unreachable.would_deny == MONITOR_ONLY
    allowed = verdict(net, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432))
    assert isinstance(allowed, Unreachable) and allowed.would_deny is None


def test_a_detailed_denial_names_the_service_and_the_rules_between_the_hosts():
    net = Net()
    net.announce()
    plain, detailed = verdict(net, SYN_TO_SSH), verdict(net, SYN_TO_SSH, detailed=True)
    assert isinstance(plain, Deny) and plain.reason == "no rule allows it (default deny)"
    assert isinstance(detailed, Deny) and detailed.dst == "db"
    assert detailed.reason.startswith("default deny: no rule allows tcp/22; rules between these hosts allow only: ")
