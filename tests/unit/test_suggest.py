"""The policy suggested from recorded flows: what becomes a rule, what is only listed, and the
property that the draft is a valid policy forwarding every flow it was suggested from."""

import re

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from segctl.core.decision import ALLOW, DecisionIndex
from segctl.core.flowlog import ALLOWED, DENIED, MONITORED, FlowEdge
from segctl.core.policy import _NAME_RE, parse_policy
from segctl.core.suggest import LISTED, TOO_MANY_PORTS, SuggestOptions, parse_selector, port_ranges, suggest
from segctl.core.yamlsrc import load_yaml_text

from .flowedges import flow_edge

WEB = {"role": "web", "env": "prod"}
APP = {"role": "app", "env": "prod"}
SCANNER = {"role": "scanner", "env": "dev"}
ROGUE = "02:00:00:00:99:99"
DAY = 86400.0


def edge(src, dst, port, proto="tcp", verdict=ALLOWED, flows=1, src_labels=WEB, dst_labels=APP):
    return flow_edge(src, dst, port, proto, verdict, flows, src_labels, dst_labels, first=DAY, last=DAY)


def parsed(text):
    return parse_policy([(load_yaml_text(text, "draft.yaml"), "draft.yaml")])


def rules_of(draft):
    """Each rule as (from group's selector, to group's selector, proto, ports, icmp types)."""
    policy = parsed(draft.text)
    return [
        (dict(rule.src.pairs), dict(rule.dst.pairs), rule.proto, rule.ports, rule.icmp_types) for rule in policy.rules
    ]


def test_one_rule_per_group_pair_and_protocol_with_the_exact_ports_seen():
    edges = [
        edge("web1", "app1", 8080, flows=5),
        edge("web2", "app1", 8081, verdict=MONITORED),  # forwarded in monitor mode: ruled too
        edge("web1", "app1", 8443),
        edge("web1", "app1", 8, proto="icmp"),
        edge("web1", "app1", 0, proto="icmp"),
        edge("web1", "app1", 53, proto="udp"),
    ]
    draft = suggest(edges, SuggestOptions())
    assert rules_of(draft) == [
        ({"role": "web"}, {"role": "app"}, "icmp", None, ((0, 0), (8, 8))),
        ({"role": "web"}, {"role": "app"}, "tcp", ((8080, 8081), (8443, 8443)), None),
        ({"role": "web"}, {"role": "app"}, "udp", ((53, 53),), None),
    ]
    assert 'icmp_types: ["echo-reply", "echo-request"]' in draft.text
    assert 'ports: ["8080-8081", 8443]' in draft.text
    assert (draft.groups, draft.rules) == (2, 3)
    # The rule's comment: flows, host pairs, first and last seen in UTC.
    assert "# role=web -> role=app: 7 flow(s), 2 host pair(s), first seen 1970-01-02T00:00:00Z" in draft.text


def test_only_destination_ports_become_rules_never_a_client_port():
    # A FlowEdge's port is the first packet's destination; a client's ephemeral source port is
    # not recorded at all, so the ports of the draft are exactly the services seen.
    services = [22, 443, 5432]
    draft = suggest([edge("web1", "app1", port) for port in services], SuggestOptions())
    policy = parsed(draft.text)
    assert [rule.ports for rule in policy.rules] == [((22, 22), (443, 443), (5432, 5432))]
    assert not re.search(r"\b(3[2-9]|[4-6][0-9])[0-9]{3}\b", draft.text)  # no 32768-65535 anywhere


@pytest.mark.parametrize(
    "ports, gap, ranges",
    [
        ([80, 81, 82, 84], 0, [(80, 82), (84, 84)]),
        ([80, 82], 0, [(80, 80), (82, 82)]),
        ([80, 82], 1, [(80, 82)]),
        ([80, 83], 1, [(80, 80), (83, 83)]),
        ([443, 443, 80], 0, [(80, 80), (443, 443)]),
        ([], 0, []),
    ],
)
def test_ranges_join_consecutive_ports_only_unless_a_gap_is_allowed(ports, gap, ranges):
    assert port_ranges(ports, gap) == ranges


def test_merge_gap_widens_over_unseen_ports_only_when_asked():
    edges = [edge("web1", "app1", 8000), edge("web1", "app1", 8002)]
    assert rules_of(suggest(edges, SuggestOptions()))[0][3] == ((8000, 8000), (8002, 8002))
    assert rules_of(suggest(edges, SuggestOptions(merge_gap=1)))[0][3] == ((8000, 8002),)


def test_min_flows_leaves_rare_services_out_and_lists_them():
    edges = [edge("web1", "app1", 8080, flows=3), edge("web1", "app1", 9999, flows=1), edge("web2", "app1", 9999)]
    draft = suggest(edges, SuggestOptions(min_flows=3))
    assert rules_of(draft)[0][3] == ((8080, 8080),)
    assert "# not suggested: below --min-flows (1):" in draft.text
    assert "role=web -> role=app tcp/9999: 2 flow(s), 2 host pair(s)" in draft.text
    assert suggest(edges, SuggestOptions(min_flows=2)).rules == 1
    assert rules_of(suggest(edges, SuggestOptions(min_flows=2)))[0][3] == ((8080, 8080), (9999, 9999))


def test_exclude_leaves_matching_hosts_out_on_either_side():
    edges = [
        edge("scan1", "app1", 22, src_labels=SCANNER),
        edge("web1", "scan1", 9100, dst_labels=SCANNER),
        edge("web1", "app1", 8080),
    ]
    draft = suggest(edges, SuggestOptions(exclude=(parse_selector("role=scanner,env=dev"),)))
    assert [rule[3] for rule in rules_of(draft)] == [((8080, 8080),)]
    assert draft.left_out == {"excluded": 2}
    assert "excluded: env=dev,role=scanner" in draft.text
    # a selector that does not match (env differs) excludes nothing
    assert suggest(edges, SuggestOptions(exclude=(parse_selector("role=scanner,env=prod"),))).rules == 3


def test_parse_selector_refuses_what_is_not_key_value():
    assert parse_selector(" role = scanner ").pairs == frozenset({("role", "scanner")})
    for bad in ("scanner", "role=a,", "=x"):
        with pytest.raises(ValueError, match="is not a selector like role=scanner"):
            parse_selector(bad)


def test_strangers_denied_flows_and_unlabelled_hosts_are_listed_not_ruled():
    edges = [
        edge(ROGUE, "app1", 5432, verdict=DENIED, flows=9, src_labels=None),
        edge("web1", ROGUE, 80, dst_labels=None),
        edge("web1", "app1", 22, verdict=DENIED, flows=4),
        edge("nolabel", "app1", 8080, src_labels={"env": "prod"}),
        edge("web1", "app1", 8080),
    ]
    draft = suggest(edges, SuggestOptions())
    assert [rule[3] for rule in rules_of(draft)] == [((8080, 8080),)]
    assert draft.left_out == {"not in the directory": 10, "denied": 4, "a host lacks a --by label": 1}
    text = draft.text
    assert "# not suggested: not in the directory (2):" in text
    assert f"#   {ROGUE} -> app1 tcp/5432: 9 flow(s)" in text
    assert "# not suggested: denied (1):\n#   web1 -> app1 tcp/22: 4 flow(s)" in text
    assert "# not suggested: a host lacks a --by label (1):\n#   nolabel -> app1 tcp/8080" in text
    assert ROGUE not in "".join(line for line in text.splitlines() if not line.startswith("#"))


def test_listings_are_bounded_and_count_the_rest():
    edges = [edge(f"02:00:00:00:00:{n:02x}", "app1", 80, src_labels=None, flows=n + 1) for n in range(LISTED + 5)]
    text = suggest(edges, SuggestOptions()).text
    assert text.count("\n#   02:00") == LISTED
    assert "#   ... and 5 more" in text
    assert f"#   02:00:00:00:00:{LISTED + 4:02x} -> app1" in text  # most flows first


def test_coverage_counts_the_connections_the_draft_allows():
    edges = [
        edge("web1", "app1", 8080, flows=6),
        edge("web1", "app1", 22, verdict=DENIED, flows=2),
        edge(ROGUE, "app1", 80, verdict=DENIED, flows=2, src_labels=None),
    ]
    draft = suggest(edges, SuggestOptions())
    assert draft.coverage == {"observed": 10, "allowed": 6, "forwarded": 6, "forwarded_allowed": 6, "percent": 60.0}
    assert "# coverage: this draft allows 6 of 10 connections observed (60.0%); 6 of the 6 forwarded" in draft.text
    assert draft.text.splitlines()[1] == (
        "# window: everything recorded; by: role; min flows: 1; merge gap: 0; max ports: 32; excluded: none"
    )


def test_group_and_rule_names_are_valid_and_unique_whatever_the_values():
    awkward = ["web", "web!", "web?", "-web", "any", "", "ünïcode", "x" * 200, 'q"uote\nnewline']
    edges = [edge(f"h{n}", "app1", 80, src_labels={"role": value}) for n, value in enumerate(awkward)]
    draft = suggest(edges, SuggestOptions())
    policy = parsed(draft.text)
    assert len(policy.groups) == len(awkward) + 1 and "any" not in policy.groups
    assert all(_NAME_RE.match(name) for name in policy.groups)
    assert sorted(dict(sel.pairs)["role"] for sel in policy.groups.values()) == sorted([*awkward, "app"])
    assert len({rule.name for rule in policy.rules}) == len(awkward)


def test_no_flows_give_an_empty_but_valid_draft():
    draft = suggest([], SuggestOptions())
    assert parsed(draft.text).rules == () and draft.coverage["percent"] == 100.0


# -- the property: valid by construction, and it forwards every flow it was suggested from --------

AWKWARD_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=6) | st.sampled_from(
    ["web", "yes", "8080", "null", "a: b", "#x", '"', "\\", "\n", "- x", "{a}", "&x", "*x"]
)
KEYS = st.sampled_from(["role", "app", "env", "zone:x"]) | AWKWARD_TEXT.filter(bool)
LABELS = st.dictionaries(KEYS, AWKWARD_TEXT, max_size=3)


@st.composite
def recorded(draw):
    """Options, a random directory (names -> labels, nearly always with the --by keys) and random
    edges between its hosts and strangers, their ports often neighbours or repeats."""
    by = tuple(draw(st.lists(KEYS, min_size=1, max_size=2, unique=True)))
    value_pool = draw(st.lists(AWKWARD_TEXT, min_size=1, max_size=3))
    hosts = {}
    for name in draw(st.lists(st.text("abcdefgh", min_size=1, max_size=3), min_size=1, max_size=6, unique=True)):
        labels = draw(LABELS)
        for key in by:
            if draw(st.integers(0, 9)):  # one host in ten lacks a key
                labels[key] = draw(st.sampled_from(value_pool))
        hosts[name] = labels
    names = sorted(hosts)
    # The directory now may differ from the labels recorded: then the draft must follow it.
    relabelled = draw(st.booleans())
    recorded_as = {name: {"role": "before"} for name in hosts} if relabelled else hosts
    edges = []
    for _ in range(draw(st.integers(0, 25))):
        src, dst = (draw(st.sampled_from(names * 4 + [ROGUE])) for _ in "sd")
        proto = draw(st.sampled_from(["tcp", "tcp", "udp", "icmp", ""]))
        ports = st.integers(0, 300) if proto == "icmp" else st.integers(0, 65535)
        port = draw(st.integers(0, 8) | ports | st.integers(1000, 1006))
        first = draw(st.floats(0, 2e9))
        edges.append(
            FlowEdge(
                src,
                src != ROGUE,
                dst,
                dst != ROGUE,
                proto,
                None if proto == "" else port,
                draw(st.sampled_from([ALLOWED, ALLOWED, MONITORED, DENIED])),
                None,
                draw(st.integers(1, 5)),
                first,
                first + draw(st.floats(0, 1e6)),
                recorded_as.get(src),
                recorded_as.get(dst),
            )
        )
    exclude = draw(st.lists(LABELS.filter(bool).filter(_plain), max_size=1))
    opts = SuggestOptions(
        by=by,
        min_flows=draw(st.sampled_from([1, 1, 2, 4])),
        exclude=tuple(parse_selector(",".join(f"{k}={v}" for k, v in d.items())) for d in exclude),
        merge_gap=draw(st.integers(0, 3)),
        max_ports=draw(st.sampled_from([0, 2, 32])),
    )
    return opts, hosts if relabelled else None, edges


def _plain(labels):
    return all("," not in k + v and "=" not in k and k.strip() == k and v.strip() == v and k for k, v in labels.items())


def ruled(edges, opts, labels_now=None):
    """The (edge, source labels, destination labels) the draft must forward: forwarded flows
    between directory hosts with every --by key, not excluded, whose service was seen at least
    min_flows times between the two groups, on at most max_ports ports."""
    service_flows = {}
    wanted = []
    for e in edges:
        src, dst = (
            (e.src_labels, e.dst_labels) if labels_now is None else (labels_now.get(e.src), labels_now.get(e.dst))
        )
        if not e.forwarded or src is None or dst is None or e.port is None:
            continue
        if e.proto not in ("tcp", "udp", "icmp") or (e.proto != "icmp" and e.port == 0) or e.port > 65535:
            continue
        if e.proto == "icmp" and e.port > 255:
            continue
        if any(s.matches(src) or s.matches(dst) for s in opts.exclude):
            continue
        if any(k not in src or k not in dst for k in opts.by):
            continue
        key = (tuple(src[k] for k in opts.by), tuple(dst[k] for k in opts.by), e.proto, e.port)
        service_flows[key] = service_flows.get(key, 0) + e.flows
        wanted.append((key, e, src, dst))
    kept = [(key, e, src, dst) for key, e, src, dst in wanted if service_flows[key] >= opts.min_flows]
    # ... and whose group pair and protocol are not seen on more than max_ports ports (a scan)
    ports = {}
    for key, *_ in kept:
        ports.setdefault(key[:3], set()).add(key[3])
    too_many = {pair for pair, seen in ports.items() if opts.max_ports and len(seen) > opts.max_ports}
    return [(e, src, dst) for key, e, src, dst in kept if key[:3] not in too_many]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recorded())
def test_the_draft_parses_and_forwards_every_flow_above_the_thresholds(found):
    opts, directory_now, edges = found
    draft = suggest(edges, opts, directory_now.get if directory_now else None)
    policy = parsed(draft.text)  # a ConfigError here is a draft `segctl check` would refuse
    assert policy.mode == "enforce" and all(_NAME_RE.match(name) for name in policy.groups)
    index = DecisionIndex(policy)
    must_forward = ruled(edges, opts, directory_now)
    event(f"flows the draft must forward: {min(len(must_forward), 3)}+")
    newly_denied = [
        (e, index.outcome(src, dst, e.proto, e.port).kind)
        for e, src, dst in must_forward
        if index.outcome(src, dst, e.proto, e.port).kind != ALLOW
    ]
    assert newly_denied == []
    # Nothing more than observed: every rule's ports were seen (merge_gap aside) and no denied,
    # stranger's or excluded flow is allowed unless another flow between the same groups was.
    assert draft.coverage["allowed"] <= draft.coverage["observed"]
    assert draft.rules == len(policy.rules)


def test_a_port_scan_forwarded_by_monitor_mode_is_listed_not_ruled():
    scan = [
        flow_edge("web1", "db1", port, src_labels={"role": "web"}, dst_labels={"role": "db"}) for port in range(1, 201)
    ]
    real = [flow_edge("web1", "app1", 8080, flows=5, src_labels={"role": "web"}, dst_labels={"role": "app"})]
    draft = suggest(scan + real, SuggestOptions())
    policy = parsed(draft.text)
    assert [(r.src_text, r.dst_text, r.ports) for r in policy.rules] == [("web", "app", ((8080, 8080),))]
    assert "role=web -> role=db tcp: 200 flow(s), 1 host pair(s)" in draft.text
    assert draft.left_out[TOO_MANY_PORTS] == 200
    everything = parsed(suggest(scan + real, SuggestOptions(max_ports=0)).text)
    assert ("web", "db", ((1, 200),)) in [(r.src_text, r.dst_text, r.ports) for r in everything.rules]
