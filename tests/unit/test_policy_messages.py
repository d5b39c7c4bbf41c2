"""What `segctl check` and `segctl explain` print about a policy, to the character.

Every validation message, with its `FILE:LINE`, is part of the interface: an operator reads it to
find the line to fix. Rule.describe() and Selector.__str__ are what `explain` prints. The cases
put the offending key on a line of its own, away from its mapping's first line, so a message that
pointed at the wrong key (or at the mapping) would show."""

import textwrap

import pytest

from segctl.core.errors import ConfigError
from segctl.core.policy import ANY, ICMP_TYPES, Selector, load_policy, merge_ranges, parse_policy
from segctl.core.protection import Protection
from segctl.core.yamlsrc import load_yaml_text

ICMP_NAMES = ", ".join(ICMP_TYPES)
RULE_KEYS = "description, from, icmp_types, name, ports, proto, scope, to"
NAME_RULE = "'name' is required (letters, digits, '.', '_', ':' or '-')"


def _documents(files):
    return [(load_yaml_text(textwrap.dedent(text).lstrip("\n"), name), name) for name, text in files]


def load(*files):
    """A policy from (file name, text) pairs; the text's first line is line 1."""
    return parse_policy(_documents(files))


def messages(*files) -> list[str]:
    """What `segctl check` prints for these files, one `FILE:LINE: message` each."""
    with pytest.raises(ConfigError) as exc:
        load(*files)
    return [str(problem) for problem in exc.value.problems]


# -- what explain prints ---------------------------------------------------------------------


def test_a_selector_prints_as_a_policy_file_writes_it():
    assert str(ANY) == "any"
    assert str(Selector(frozenset({("role", "web")}))) == "{role: web}"
    assert str(Selector(frozenset({("role", "db"), ("env", "prod")}))) == "{env: prod, role: db}"


def test_each_rule_describes_itself_as_explain_prints_it():
    p = load(
        (
            "p.yaml",
            """
            groups:
              web: {role: web}
            rules:
              - {name: sql, from: web, to: {role: db, env: prod}, proto: tcp, ports: [5432, "8000-8080", 23, 22]}
              - {name: ping, from: any, to: any, proto: icmp, icmp_types: [timestamp-request, 4, echo-request, 3, 0]}
              - {name: all, from: {role: ops}, to: web}
              - {name: dns, from: any, to: web, proto: udp}
              - {name: echo, from: web, to: any, proto: icmp}
            """,
        )
    )
    assert [rule.describe() for rule in p.rules] == [
        "sql: web -> {env: prod, role: db} tcp ports 22-23,5432,8000-8080 (p.yaml:4)",
        "ping: any -> any icmp types 0,3-4,8,13 (p.yaml:5)",
        "all: {role: ops} -> web any (p.yaml:6)",
        "dns: any -> web udp (p.yaml:7)",
        "echo: web -> any icmp (p.yaml:8)",
    ]
    assert [rule.index for rule in p.rules] == [0, 1, 2, 3, 4]
    assert p.groups == {"web": Selector(frozenset({("role", "web")}))}  # `check` counts them


# -- accepted shapes and their boundaries -----------------------------------------------------


@pytest.mark.parametrize(
    ("ranges", "merged"),
    [
        ([(6, 8), (1, 5)], [(1, 8)]),  # adjacent: one range
        ([(1, 5), (5, 8)], [(1, 8)]),  # overlapping by one
        ([(1, 5), (7, 8)], [(1, 5), (7, 8)]),  # a gap of one port stays a gap
        ([(1, 10), (2, 3), (10, 12)], [(1, 12)]),
        ([(8, 8), (8, 8)], [(8, 8)]),
    ],
)
def test_merged_ranges_cover_exactly_the_same_ports(ranges, merged):
    assert merge_ranges(ranges) == merged


@pytest.mark.parametrize(
    ("service", "ports"),
    [
        ("proto: tcp, ports: 22", ((22, 22),)),
        ('proto: tcp, ports: "8000-8080"', ((8000, 8080),)),
        ('proto: udp, ports: [1, 65535, " 10 - 20 ", "21"]', ((1, 1), (10, 21), (65535, 65535))),
        ('proto: tcp, ports: ["1-1", "65535-65535"]', ((1, 1), (65535, 65535))),
        ("proto: tcp, ports: [5, 7]", ((5, 5), (7, 7))),
    ],
)
def test_ports_a_rule_may_name(service, ports):
    (rule,) = load(("p.yaml", f"rules:\n  - {{name: r, from: any, to: any, {service}}}\n")).rules
    assert rule.ports == ports and rule.icmp_types is None


@pytest.mark.parametrize(
    ("types", "ranges"),
    [
        ("echo-request", ((8, 8),)),
        ("13", ((13, 13),)),
        ("[0, 255]", ((0, 0), (255, 255))),
        ("[echo-reply]", ((0, 0),)),
        ("[address-mask-reply, 17, 16, information-request]", ((15, 18),)),
    ],
)
def test_icmp_types_a_rule_may_name(types, ranges):
    (rule,) = load(("p.yaml", f"rules:\n  - {{name: r, from: any, to: any, proto: icmp, icmp_types: {types}}}\n")).rules
    assert rule.icmp_types == ranges and rule.ports is None


def test_protection_accepts_every_bound_it_names():
    low = load(
        (
            "p.yaml",
            """
            protection:
              packet_in_rate: 1
              packet_in_burst: 1
              denied_rate: 0.1
              denied_burst: 1
              flood_hold: 1
              meters: false
              scan_quarantine: {denied: 1, seconds: 0.1}
            """,
        )
    )
    assert low.protection == Protection(
        packet_in_rate=1,
        packet_in_burst=1,
        denied_rate=0.1,
        denied_burst=1,
        flood_hold=1,
        meters=False,
        scan_denied=1,
        scan_seconds=0.1,
    )
    high = load(
        (
            "p.yaml",
            """
            protection:
              packet_in_rate: 1000000
              packet_in_burst: 1000000
              denied_rate: 1000000
              denied_burst: 1000000
              flood_hold: 3600
              meters: true
              scan_quarantine: {denied: 1000000, seconds: 86400}
            """,
        )
    )
    assert high.protection == Protection(
        packet_in_rate=1000000,
        packet_in_burst=1000000,
        denied_rate=1000000,
        denied_burst=1000000,
        flood_hold=3600,
        meters=True,
        scan_denied=1000000,
        scan_seconds=86400.0,
    )
    # Rates may be fractions; a scan window left out is the default one.
    odd = load(("p.yaml", "protection: {packet_in_rate: 2.5, denied_rate: 0.5, scan_quarantine: {denied: 3}}\n"))
    assert odd.protection == Protection(packet_in_rate=2.5, denied_rate=0.5, scan_denied=3, scan_seconds=10.0)
    assert load(("p.yaml", "rules: []\n")).protection == Protection()


# -- the messages -----------------------------------------------------------------------------


def test_a_file_that_is_not_a_mapping():
    assert messages(("p.yaml", "# rules, but as a list\n- {name: r, from: any, to: any}\n")) == [
        "p.yaml:2: expected a mapping with 'groups' and 'rules'"
    ]
    assert messages(("p.yaml", "5\n")) == ["p.yaml:1: expected a mapping with 'groups' and 'rules'"]


def test_mode_messages_point_at_the_mode_line():
    assert messages(("p.yaml", "rules: []\nmode: strict\n")) == [
        "p.yaml:2: mode 'strict' is not one of enforce, monitor"
    ]
    assert messages(
        ("a.yaml", "rules: []\nmode: monitor\n"),
        ("b.yaml", "groups: {}\nrules: []\nmode: enforce\n"),
    ) == ["b.yaml:3: mode enforce contradicts mode monitor set at a.yaml:2"]


def test_groups_and_rules_of_the_wrong_shape():
    assert messages(("p.yaml", "rules: []\ngroups: [web]\n")) == [
        "p.yaml:2: 'groups' must be a mapping of name: {label: value}"
    ]
    assert messages(("p.yaml", "groups: {}\nrules: {name: r}\n")) == ["p.yaml:2: 'rules' must be a list"]


def test_group_messages_and_the_groups_after_a_bad_one_still_count():
    assert messages(
        (
            "p.yaml",
            """
            groups:
              -web: {role: web}
              web: role
              5: {role: five}
              app:
                role: app
                tier: [a, b]
              db: {role: db}
            rules:
              - {name: r, from: db, to: db}
            """,
        )
    ) == [
        "p.yaml:2: group name '-web' is not allowed",
        "p.yaml:3: group web: expected a label selector like {role: web}",
        "p.yaml:4: group name 5 is not allowed",
        "p.yaml:7: group app: label 'tier' must map to a plain value",
    ]


def test_a_group_defined_in_two_files():
    files = (
        ("a.yaml", "groups:\n  x: {a: b}\n  web: {role: web}\n"),
        ("b.yaml", "groups:\n  web: {role: other}\n  db: {role: db}\nrules:\n  - {name: r, from: web, to: db}\n"),
    )
    assert messages(*files) == ["b.yaml:2: group web is already defined at a.yaml:3"]
    p = load(files[0], ("b.yaml", "rules:\n  - {name: r, from: web, to: any}\n"))
    assert p.rules[0].src == Selector(frozenset({("role", "web")})) and p.rules[0].src_text == "web"
    assert sorted(p.groups) == ["web", "x"]


def test_protection_set_twice_or_not_a_mapping():
    assert messages(
        ("a.yaml", "rules: []\nprotection: {flood_hold: 2}\n"),
        ("b.yaml", "groups: {}\nrules: []\nprotection: {flood_hold: 3}\n"),
    ) == ["b.yaml:3: protection is already set at a.yaml:2"]
    assert messages(("p.yaml", "rules: []\nprotection: 5\n")) == ["p.yaml:2: protection must be a mapping"]


def test_every_protection_setting_out_of_its_range():
    assert messages(
        (
            "p.yaml",
            """
            rules: []
            protection:
              packet_in_rate: 0
              packet_in_burst: 1000001
              denied_rate: 0.05
              denied_burst: 1.5
              flood_hold: 3601
              meters: "yes"
              colour: red
            """,
        )
    ) == [
        "p.yaml:9: protection: unknown key 'colour' (allowed: denied_burst, denied_rate, flood_hold, meters, "
        "packet_in_burst, packet_in_rate, scan_quarantine)",
        "p.yaml:3: protection: packet_in_rate must be 1-1000000 packet-ins per second per port",
        "p.yaml:4: protection: packet_in_burst must be 1-1000000 packet-ins",
        "p.yaml:5: protection: denied_rate must be 0.1-1000000 denials per second per port",
        "p.yaml:6: protection: denied_burst must be 1-1000000 denials",
        "p.yaml:7: protection: flood_hold must be 1-3600 seconds",
        "p.yaml:8: protection: meters must be true or false",
    ]
    assert messages(("p.yaml", "protection:\n  packet_in_rate: 1000001\n  denied_rate: 1000000.5\n")) == [
        "p.yaml:2: protection: packet_in_rate must be 1-1000000 packet-ins per second per port",
        "p.yaml:3: protection: denied_rate must be 0.1-1000000 denials per second per port",
    ]


@pytest.mark.parametrize(
    ("scan", "message"),
    [
        ("5", "scan_quarantine is {denied: N, seconds: T}"),
        ("{denied: 5, seconds: 1, extra: 1}", "scan_quarantine is {denied: N, seconds: T}"),
        ("{denied: 0}", "scan_quarantine needs denied: a count of 1 or more"),
        ("{denied: 1000001}", "scan_quarantine needs denied: a count of 1 or more"),
        ("{denied: 2.0}", "scan_quarantine needs denied: a count of 1 or more"),
        ("{denied: 5, seconds: 0}", "scan_quarantine seconds must be 0.1-86400"),
        ("{denied: 5, seconds: 86401}", "scan_quarantine seconds must be 0.1-86400"),
        ('{denied: 5, seconds: "10"}', "scan_quarantine seconds must be 0.1-86400"),
    ],
)
def test_scan_quarantine_messages(scan, message):
    text = f"rules: []\nprotection:\n  flood_hold: 2\n  scan_quarantine: {scan}\n"
    assert messages(("p.yaml", text)) == [f"p.yaml:4: protection: {message}"]


def test_rule_messages_point_at_the_key_at_fault():
    assert messages(
        (
            "p.yaml",
            """
            rules:
              - just-a-string
              - from: any
                name: bad name
                to: nowhere
                proto: sctp
                colour: red
              - to: any
                from: nowhere
                name: r2
              - {from: any}
              - from: any
                to: any
                name: dup
              - from: any
                to: any
                name: dup
            """,
        )
    ) == [
        "p.yaml:2: a rule must be a mapping with name, from, to, proto",
        f"p.yaml:7: rule bad name: unknown key 'colour' (allowed: {RULE_KEYS})",
        f"p.yaml:4: rule bad name: {NAME_RULE}",
        "p.yaml:5: rule bad name to: unknown group 'nowhere'",
        "p.yaml:6: rule bad name: proto 'sctp' is not one of tcp, udp, icmp, any",
        "p.yaml:9: rule r2 from: unknown group 'nowhere'",
        f"p.yaml:11: rule at line 11: {NAME_RULE}",
        "p.yaml:11: rule at line 11: 'to' is required",
        "p.yaml:17: duplicate rule name 'dup' (first at p.yaml:14)",
    ]


def test_port_messages_point_at_the_port_at_fault():
    assert messages(
        (
            "p.yaml",
            """
            rules:
              - name: p1
                from: any
                to: any
                proto: tcp
                ports:
              - name: p2
                from: any
                to: any
                proto: icmp
                ports: [22]
              - name: p3
                from: any
                to: any
                proto: tcp
                ports: []
              - name: p4
                from: any
                to: any
                proto: udp
                ports:
                  - 22
                  - http
                  - 0
                  - "1-70000"
                  - "0-5"
                  - "65536-1"
                  - "1-65536"
                  - "90-80"
                  - "91-81"
                  - 1
              - name: p5
                from: any
                to: any
                proto: tcp
                ports: http
            """,
        )
    ) == [
        "p.yaml:6: rule p1: 'ports' is empty; omit it to mean every port",
        "p.yaml:11: rule p2: ports only apply to tcp or udp, not icmp",
        "p.yaml:16: rule p3: 'ports' is empty; omit it to mean every port",
        "p.yaml:23: rule p4: port 'http' is not a number or a range like \"8000-8080\"",
        "p.yaml:24: rule p4: port 0 is out of range 1-65535",
        "p.yaml:25: rule p4: port '1-70000' is out of range 1-65535",
        "p.yaml:26: rule p4: port '0-5' is out of range 1-65535",
        "p.yaml:27: rule p4: port '65536-1' is out of range 1-65535",
        "p.yaml:28: rule p4: port '1-65536' is out of range 1-65535",
        "p.yaml:29: rule p4: port range '90-80' runs backwards",
        "p.yaml:30: rule p4: port range '91-81' runs backwards",
        "p.yaml:36: rule p5: port 'http' is not a number or a range like \"8000-8080\"",
    ]


def test_icmp_type_messages_point_at_the_type_at_fault():
    assert messages(
        (
            "p.yaml",
            """
            rules:
              - name: i1
                from: any
                to: any
                proto: udp
                icmp_types: [8]
              - name: i2
                from: any
                to: any
                proto: icmp
                icmp_types:
                  - 8
                  - 256
                  - true
                  - bogus
                  - -1
              - name: i3
                from: any
                to: any
                proto: icmp
                icmp_types: 300
            """,
        )
    ) == [
        "p.yaml:6: rule i1: icmp_types only apply to proto icmp, not udp",
        f"p.yaml:13: rule i2: ICMP type 256 is not 0-255 or one of {ICMP_NAMES}",
        f"p.yaml:14: rule i2: ICMP type True is not 0-255 or one of {ICMP_NAMES}",
        f"p.yaml:15: rule i2: ICMP type 'bogus' is not 0-255 or one of {ICMP_NAMES}",
        f"p.yaml:16: rule i2: ICMP type -1 is not 0-255 or one of {ICMP_NAMES}",
        f"p.yaml:21: rule i3: ICMP type 300 is not 0-255 or one of {ICMP_NAMES}",
    ]


def test_a_rule_with_bad_ports_has_its_other_problems_reported_too():
    assert messages(
        ("p.yaml", "rules:\n  - {name: r, from: any, to: any, proto: tcp, ports: [http], icmp_types: [8]}\n")
    ) == [
        "p.yaml:2: rule r: port 'http' is not a number or a range like \"8000-8080\"",
        "p.yaml:2: rule r: icmp_types only apply to proto icmp, not tcp",
    ]


# -- policy folders ---------------------------------------------------------------------------


def test_an_empty_policy_folder_names_the_folder(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_policy(str(tmp_path))
    assert [str(p) for p in exc.value.problems] == [f"{tmp_path}:1: folder holds no .yaml or .yml policy file"]


def test_hidden_files_in_a_policy_folder_are_not_read(tmp_path):
    (tmp_path / "rules.yaml").write_text("rules:\n  - {name: r, from: any, to: any, proto: tcp}\n")
    (tmp_path / ".rules.yaml.swp.yaml").write_text("rules: [\n")  # an editor's leftover
    assert [rule.name for rule in load_policy(str(tmp_path)).rules] == ["r"]


def test_every_unreadable_file_of_a_folder_is_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("rules: [\n")
    (tmp_path / "b.yml").write_text("rules: []\n")
    (tmp_path / "c.yaml").write_text("groups: {web: {role: web}\n")
    with pytest.raises(ConfigError) as exc:
        load_policy(str(tmp_path))
    assert [(p.file, p.line) for p in exc.value.problems] == [
        (str(tmp_path / "a.yaml"), 2),
        (str(tmp_path / "c.yaml"), 2),
    ]
    assert all(p.message.startswith("YAML syntax: ") for p in exc.value.problems)


@pytest.mark.parametrize("port", ["²", "1" * 5000, "٣-5", "1-" + "9" * 5000])
def test_ports_int_would_refuse_are_reported_not_raised(port):
    """'²' is a digit to str.isdigit() and int() refuses it; int() refuses 5000 digits too."""
    text = f'rules:\n  - {{name: r, from: any, to: any, proto: tcp, ports: ["{port}"]}}\n'
    assert messages(("p.yaml", text)) == [
        f'p.yaml:2: rule r: port {port!r} is not a number or a range like "8000-8080"'
    ]
