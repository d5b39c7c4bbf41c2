"""The section reader every configuration loader uses: each typed read takes a good value, and
reports a bad one at the line of its key and reads it as the default."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segctl.core.directory import normalize_mac
from segctl.core.errors import Problems
from segctl.core.sections import PORT_MAX, Section, parse_dpid, parse_port
from segctl.core.yamlsrc import load_yaml_text


def section(text: str, **options) -> Section:
    """`text` (its first line is line 1) as the top section of `f.yaml`."""
    data = load_yaml_text(textwrap.dedent(text).lstrip("\n"), "f.yaml")
    return Section.read(data, Problems("f.yaml"), line=1, expected="expected a mapping", **options)


def said(s: Section) -> list[str]:
    return [str(problem) for problem in s.problems.items]


# -- the section itself ------------------------------------------------------------------------


def test_a_file_that_is_not_a_mapping_is_one_problem_and_reads_as_empty():
    s = section("- a\n- b\n")
    assert said(s) == ["f.yaml:1: expected a mapping"] and not s.ok
    assert s.text("x", required=True) is None and s.integer("n", 1, 5, 3) == 3
    assert s.child("sub", required=True).text("y", required=True) is None
    assert said(s) == ["f.yaml:1: expected a mapping"]  # nothing more is worth saying


def test_unknown_keys_each_at_its_line():
    s = section("a: 1\nb: 2\nc: 3\n", allowed={"a", "c"})
    assert said(s) == ["f.yaml:2: unknown key 'b' (allowed: a, c)"]
    s = section("a: 1\nb: 2\n", allowed={"a"}, name="top", unknown="b is not for here")
    assert said(s) == ["f.yaml:2: top: b is not for here"]


def test_required_keys_are_missed_at_the_line_that_names_the_section():
    s = section("x: 1\nsub:\n  a: 1\n")
    sub = s.child("sub", name="sub")
    assert sub.require("a", "b") is False
    assert s.child("gone", required=True).ok
    assert said(s) == ["f.yaml:2: sub: 'b' is required", "f.yaml:1: 'gone' is required"]


def test_a_sub_section_names_its_problems_and_says_when_it_is_not_a_mapping():
    s = section("sub: 5\nbare: 6\nown: 7\nnull:\nfine:\n  a: x\n  b: y\n")
    assert not s.child("sub").ok
    assert not s.child("bare", quote_keys=False).ok
    assert not s.child("own", expected="own is {a: A}").ok
    assert s.child("null").ok and s.child("null").get("a") is None  # written empty: missing
    fine = s.child("fine", allowed={"a"})
    assert fine.text("a") == "x" and fine.line == 5
    assert said(s) == [
        "f.yaml:1: 'sub' must be a mapping",
        "f.yaml:2: bare must be a mapping",
        "f.yaml:3: own is {a: A}",
        "f.yaml:7: fine: unknown key 'b' (allowed: a)",
    ]


# -- typed reads -------------------------------------------------------------------------------


def test_text():
    s = section("a: ' hello '\nb: 5\nc: ''\nd:\n", name="t")
    assert s.text("a") == "hello"
    assert s.text("b", "dflt") == "dflt" and s.text("c") is None
    assert s.text("d", "dflt") == "dflt" and s.text("e", required=True) is None
    assert said(s) == [
        "f.yaml:2: t: 'b' must be a non-empty string",
        "f.yaml:3: t: 'c' must be a non-empty string",
        "f.yaml:1: t: 'e' is required",
    ]


def test_integer_in_range():
    s = section("a: 5\nb: 0\nc: 2.0\nd: true\ne:\n")
    assert s.integer("a", 1, 5) == 5
    assert s.integer("b", 1, 5, 3) == 3
    assert s.integer("c", 1, 5, unit="hops") is None
    assert s.integer("d", 1, 5) is None and s.integer("e", 1, 5) is None
    assert s.integer("z", 1, 5, 4) == 4 and s.integer("y", 1, 5, required=True, problem="y needs a count") is None
    assert said(s) == [
        "f.yaml:2: 'b' must be 1-5",
        "f.yaml:3: 'c' must be 1-5 hops",
        "f.yaml:4: 'd' must be 1-5",
        "f.yaml:5: 'e' must be 1-5",  # written with no value: a bad number, not a missing one
        "f.yaml:1: y needs a count",
    ]


def test_number_and_seconds():
    s = section("rate: 2.5\nlow: 0.05\nwait: 3\nlong: 90000\nword: soon\n", quote_keys=False)
    assert s.number("rate", 0.1, 10) == 2.5 and s.number("low", 0.1, 10, unit="per second") is None
    assert s.seconds("wait", 1, 60, 10.0) == 3.0 and isinstance(s.seconds("wait", 1, 60, 10.0), float)
    assert s.seconds("long", 1, 86400, 10.0) == 10.0
    assert s.seconds("word", 1, 60, 5, problem="word must be a delay") == 5.0
    assert s.seconds("none", 1, 60, 7) == 7.0
    assert said(s) == [
        "f.yaml:2: low must be 0.1-10 per second",
        "f.yaml:4: long must be a number of seconds, 1-86400",
        "f.yaml:5: word must be a delay",
    ]


def test_flag():
    s = section("a: true\nb: false\nc: 'yes'\nd: 1\n")
    assert s.flag("a") is True and s.flag("b", True) is False
    assert s.flag("c", False) is False and s.flag("d") is None and s.flag("e", True) is True
    assert said(s) == ["f.yaml:3: 'c' must be true or false", "f.yaml:4: 'd' must be true or false"]


def test_choice_in_both_message_forms():
    s = section("scope: level\nmode: strict\nkind: odd\nproto:\n")
    assert s.choice("scope", ("subtree", "level")) == "level"
    assert s.choice("mode", ("enforce", "monitor"), "enforce", name_value=True) == "enforce"
    assert s.choice("kind", ("a", "b"), "a") == "a"
    assert s.choice("proto", ("tcp", "udp"), name_value=True) is None
    assert s.choice("gone", ("x",), "x") == "x"
    assert said(s) == [
        "f.yaml:2: mode 'strict' is not one of enforce, monitor",
        "f.yaml:3: 'kind' must be one of a, b",
        "f.yaml:4: proto None is not one of tcp, udp",
    ]


def test_port():
    s = section("a: 1\nb: 4294967040\nc: 0\nd: 70000\ne: '80'\nf: true\ng: http\n")
    assert s.port("a") == 1 and s.port("b") == 0xFFFFFF00 and s.port("e", PORT_MAX) == 80
    assert s.port("c") is None and s.port("d", PORT_MAX) is None and s.port("f") is None and s.port("g") is None
    assert s.port("missing") is None
    assert said(s) == [
        "f.yaml:3: c 0 is not a port number",
        "f.yaml:4: d 70000 is not a port number",
        "f.yaml:6: f True is not a port number",
        "f.yaml:7: g 'http' is not a port number",
    ]


def test_datapath_id():
    s = section("a: 7\nb: '0x10'\nc: '00:00:00:00:00:00:01:00'\nd: -1\ne: zz\n")
    assert (s.dpid("a"), s.dpid("b"), s.dpid("c")) == (7, 16, 256)
    assert s.dpid("d") is None and s.dpid("e") is None and s.dpid("f", required=True) is None
    assert said(s) == [
        "f.yaml:4: d -1 is not a datapath id",
        "f.yaml:5: e 'zz' is not a datapath id",
        "f.yaml:1: 'f' is required",
    ]


def test_ipv4_and_host_mac_named_as_the_section_calls_them():
    s = section(
        """
        ip: 10.0.0.1
        bad_ip: 300.1.1.1
        mac: "02-00-00-00-00-AA"
        multicast: "01:00:5e:00:00:01"
        number: 5
        probe: "0e:5e:c0:00:00:01"
        """
    )
    s.called.update(bad_ip="address", number="")
    assert s.ipv4("ip") == "10.0.0.1" and s.ipv4("bad_ip") is None
    assert s.host_mac("mac", normalize_mac) == "02:00:00:00:00:aa"
    assert s.host_mac("multicast", normalize_mac) is None
    assert s.host_mac("number", normalize_mac, hint=" (quote it)") is None
    assert s.host_mac("probe", normalize_mac) is None
    assert said(s) == [
        "f.yaml:2: address '300.1.1.1' is not an IPv4 address",
        "f.yaml:4: multicast 01:00:5e:00:00:01 is a multicast (group) address, not a host's",
        "f.yaml:5: 5 is not a MAC address (quote it)",
        "f.yaml:6: probe 0e:5e:c0:00:00:01 is the source address of the controller's ARP requests locating hosts,"
        " not a host's",
    ]


def test_labels():
    s = section("labels:\n  role: web\n  tier: 1\n  public: true\n  bad: [a]\n  empty:\n  5: x\n")
    labels = s.child("labels", name="host h").labels()
    assert labels == {"role": "web", "tier": "1", "public": "true"}
    assert said(s) == [
        "f.yaml:5: host h: label 'bad' must be a plain value",
        "f.yaml:6: host h: label 'empty' must be a plain value",
        "f.yaml:7: host h: label 5 must be a plain value",
    ]


def test_lists_and_one_or_more():
    s = section("xs:\n  - 1\n  - 2\none: 5\nnot: {a: 1}\n")
    assert s.items("xs") == [(2, 1), (3, 2)] and s.items("missing") == []
    assert s.one_or_more("xs") == [(2, 1), (3, 2)] and s.one_or_more("one") == [(4, 5)]
    assert s.items("not") == []
    assert said(s) == ["f.yaml:5: 'not' must be a list"]


def test_an_ldap_entry_section_has_no_lines():
    """Built from an LDAP entry: no lines, so its problems name only the DN."""
    fields = load_yaml_text("port: '0'\n", "x")
    fields.line, fields.lines = None, {}
    s = Section(fields, Problems("cn=a,dc=x"), called={"port": "x-port"})
    assert s.port("port") is None and s.text("name", required=True) is None
    assert said(s) == ["cn=a,dc=x: x-port '0' is not a port number", "cn=a,dc=x: 'name' is required"]


# -- the value checks behind the reads, over every value ---------------------------------------


@given(st.integers(-(2**40), 2**40))
def test_a_port_is_exactly_a_number_in_its_range(number):
    expected = number if 1 <= number <= PORT_MAX else None
    assert parse_port(number, PORT_MAX) == expected
    assert parse_port(str(number), PORT_MAX) == expected


@given(st.integers(0, 2**64 - 1))
def test_every_datapath_id_form_reads_as_the_same_number(number):
    colons = ":".join(f"{number:016x}"[i : i + 2] for i in range(0, 16, 2))
    assert parse_dpid(number) == parse_dpid(str(number)) == parse_dpid(hex(number)) == parse_dpid(colons) == number


@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.text(max_size=5)))
def test_an_integer_read_returns_only_integers_in_range(value):
    data = load_yaml_text("a: 1\n", "f.yaml")
    data["a"] = value
    s = Section(data, Problems("f.yaml"))
    got = s.integer("a", 1, 100, default=-5)
    ok = type(value) is int and 1 <= value <= 100
    assert got == (value if ok else -5)
    assert [p.line for p in s.problems.items] == ([] if ok else [1])


@pytest.mark.parametrize("spelling", ["02:00:00:00:01:0A", "02-00-00-00-01-0a"])
def test_a_host_mac_comes_back_in_one_form(spelling):
    assert section(f'mac: "{spelling}"\n').host_mac("mac", normalize_mac) == "02:00:00:00:01:0a"


@pytest.mark.parametrize("text", ["²", "٣", "1" * 5000, "", " ", "-1", "+5", "0x10"])
def test_port_text_is_ascii_digits_only(text):
    assert parse_port(text) is None
