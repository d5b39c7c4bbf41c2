import pytest

from segctl.core.errors import ConfigError
from segctl.core.policy import ANY, ICMP_TYPES, load_policy

from .helpers import policy, problems


def test_groups_inline_selectors_any_and_port_ranges():
    p = policy("""
        mode: monitor
        groups:
          web: {role: web}
          db: {role: db, env: prod}
        rules:
          - {name: web-to-db, from: web, to: db, proto: tcp, ports: [5432, "8000-8080", "22"]}
          - {name: ping, from: {role: ops}, to: any, proto: icmp}
          - {name: all, from: any, to: web}
    """)
    assert p.mode == "monitor"
    first, second, third = p.rules
    assert first.ports == ((22, 22), (5432, 5432), (8000, 8080))
    assert first.src_text == "web" and first.line == 7
    assert second.dst is ANY and second.ports is None
    assert third.proto == "any"
    assert first.matches({"role": "web"}, {"role": "db", "env": "prod"}, "tcp", 8080)
    assert not first.matches({"role": "web"}, {"role": "db"}, "tcp", 5432)
    assert not first.matches({"role": "web"}, {"role": "db", "env": "prod"}, "udp", 5432)


def test_every_validation_error_has_its_line():
    with pytest.raises(ConfigError) as exc:
        policy("""
            mode: strict
            groups:
              web: {role: web}
              empty: {}
              any: {role: x}
            rules:
              - {name: a, from: web, to: nowhere, proto: tcp}
              - {name: b, from: web, to: web, proto: sctp}
              - {name: c, from: web, to: web, proto: tcp, ports: [70000]}
              - {name: d, from: web, to: web, proto: icmp, ports: [1]}
              - {name: a, from: web, to: web, proto: tcp}
              - {name: f, from: web, to: web, proto: tcp, colour: red}
              - {name: g, from: web, to: web, proto: udp, ports: ["90-80"]}
              - {name: h, to: web}
              - {name: i, from: web, to: web, proto: tcp, ports: [http]}
              - {name: j, from: [web], to: web}
            unknown: 1
        """)
    assert problems(exc) == [
        "policy.yaml:18: unknown key 'unknown' (allowed: groups, mode, modes, pipeline, protection, rules)",
        "policy.yaml:2: mode 'strict' is not one of enforce, monitor",
        "policy.yaml:5: group empty: an empty selector would match every host; write 'any'",
        "policy.yaml:6: group name 'any' is not allowed",
        "policy.yaml:8: rule a to: unknown group 'nowhere'",
        "policy.yaml:9: rule b: proto 'sctp' is not one of tcp, udp, icmp, any",
        "policy.yaml:10: rule c: port 70000 is out of range 1-65535",
        "policy.yaml:11: rule d: ports only apply to tcp or udp, not icmp",
        "policy.yaml:12: duplicate rule name 'a' (first at policy.yaml:8)",
        "policy.yaml:13: rule f: unknown key 'colour' "
        "(allowed: description, from, icmp_types, name, ports, proto, scope, to)",
        "policy.yaml:14: rule g: port range '90-80' runs backwards",
        "policy.yaml:15: rule h: 'from' is required",
        "policy.yaml:16: rule i: port 'http' is not a number or a range like \"8000-8080\"",
        "policy.yaml:17: rule j from: expected a group name, a selector {key: value} or 'any'",
    ]


def test_a_folder_of_policy_files_is_one_policy(tmp_path):
    (tmp_path / "10-groups.yaml").write_text("groups:\n  web: {role: web}\n")
    (tmp_path / "20-rules.yml").write_text("rules:\n  - {name: r1, from: web, to: web, proto: tcp}\n")
    (tmp_path / "README.txt").write_text("not policy")
    p = load_policy(str(tmp_path))
    assert [r.name for r in p.rules] == ["r1"] and p.mode == "enforce"
    (tmp_path / "30-more.yaml").write_text("mode: monitor\nrules:\n  - {name: r1, from: web, to: any}\n")
    (tmp_path / "05-mode.yaml").write_text("mode: enforce\n")
    with pytest.raises(ConfigError) as exc:
        load_policy(str(tmp_path))
    text = "\n".join(problems(exc))
    assert f"{tmp_path}/30-more.yaml:1: mode monitor contradicts mode enforce set at {tmp_path}/05-mode.yaml:1" in text
    assert f"{tmp_path}/30-more.yaml:3: duplicate rule name 'r1' (first at {tmp_path}/20-rules.yml:2)" in text


def test_empty_folder_and_empty_file(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_policy(str(tmp_path))
    assert "holds no .yaml" in problems(exc)[0]
    (tmp_path / "p.yaml").write_text("")
    assert load_policy(str(tmp_path / "p.yaml")).rules == ()


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{name: r, from: any, to: any, proto: any, ports: [22]}", "rule r: ports only apply to tcp or udp, not any"),
        ("{name: r, from: any, to: any, ports: [22]}", "rule r: ports only apply to tcp or udp, not any"),
        ("{name: r, from: any, to: any, proto: icmp, ports: [22]}", "rule r: ports only apply to tcp or udp, not icmp"),
        ("{name: r, from: any, to: any, proto: any, ports: []}", "rule r: ports only apply to tcp or udp, not any"),
        (
            "{name: r, from: any, to: any, proto: tcp, ports: []}",
            "rule r: 'ports' is empty; omit it to mean every port",
        ),
        (
            "{name: r, from: any, to: any, proto: tcp, icmp_types: [8]}",
            "rule r: icmp_types only apply to proto icmp, not tcp",
        ),
        (
            "{name: r, from: any, to: any, proto: udp, icmp_types: [8]}",
            "rule r: icmp_types only apply to proto icmp, not udp",
        ),
        (
            "{name: r, from: any, to: any, proto: any, icmp_types: [8]}",
            "rule r: icmp_types only apply to proto icmp, not any",
        ),
        (
            "{name: r, from: any, to: any, icmp_types: [redirect]}",
            "rule r: icmp_types only apply to proto icmp, not any",
        ),
        (
            "{name: r, from: any, to: any, proto: icmp, icmp_types: []}",
            "rule r: 'icmp_types' is empty; omit it to mean echo-request",
        ),
        (
            "{name: r, from: any, to: any, proto: icmp, icmp_types: [256]}",
            "rule r: ICMP type 256 is not 0-255 or one of " + ", ".join(ICMP_TYPES),
        ),
        (
            "{name: r, from: {}, to: any, proto: tcp}",
            "rule r from: an empty selector would match every host; write 'any'",
        ),
        (
            "{name: r, from: any, to: {}, proto: tcp}",
            "rule r to: an empty selector would match every host; write 'any'",
        ),
        ("{name: r, from: {role: }, to: any}", "rule r from: label 'role' must map to a plain value"),
        ("{name: r, from: any, to: any, proto: tcp, ports: [0]}", "rule r: port 0 is out of range 1-65535"),
        ("{name: r, from: any, to: any, proto: tcp, ports: [true]}", "rule r: port True is out of range 1-65535"),
        ("{name: r, from: any, to: any, proto: TCP}", "rule r: proto 'TCP' is not one of tcp, udp, icmp, any"),
        ("{name: r, from: any, to: any, proto: }", "rule r: proto None is not one of tcp, udp, icmp, any"),
    ],
    ids=[
        "ports-on-any",
        "ports-without-proto",
        "ports-on-icmp",
        "empty-ports-on-any",
        "empty-ports-on-tcp",
        "icmp-types-on-tcp",
        "icmp-types-on-udp",
        "icmp-types-on-any",
        "icmp-types-without-proto",
        "empty-icmp-types",
        "icmp-type-out-of-range",
        "empty-from-selector",
        "empty-to-selector",
        "label-without-value",
        "port-zero",
        "port-true",
        "proto-in-capitals",
        "proto-empty",
    ],
)
def test_the_validator_refuses_every_shape_that_would_allow_more_than_it_says(rule, message):
    """Each of these, if accepted, would allow more than its author wrote (ports on `any` or
    `icmp` would be ignored and every port, type and protocol allowed) or would leave the
    reader guessing."""
    with pytest.raises(ConfigError) as exc:
        policy(f"rules:\n  - {rule}\n")
    assert problems(exc) == [f"policy.yaml:2: {message}"]


@pytest.mark.parametrize("proto", ["tcp", "any"])
def test_ports_left_empty_are_refused_like_an_empty_list(proto):
    with pytest.raises(ConfigError):
        policy(f"rules:\n  - {{name: r, from: any, to: any, proto: {proto}, ports: }}\n")
