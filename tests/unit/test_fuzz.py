"""Malformed input never crashes or corrupts: random and mutated frames into the packet-in path,
random and mutated files into the directory, policy, LDAP-settings and state parsers.

Seeds live in tests/fuzz/corpus. `make test` runs a short fuzz, `make fuzz` a long one
(`--hypothesis-profile=fuzz`)."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from segctl.core.directory import parse_directory
from segctl.core.errors import ConfigError
from segctl.core.flows import Barrier, FlowAdd, FlowDelete, PacketOut
from segctl.core.ldapsettings import parse_ldap_settings
from segctl.core.packets import parse_frame
from segctl.core.policy import parse_policy
from segctl.core.yamlsrc import load_yaml_text
from segctl.state import StateError, load_state, save_state, state_path

from ..fakenet import ATTACHED, DB, LINKS, WEB, Net, tcp

CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fuzz", "corpus")


def _frames() -> list[bytes]:
    with open(os.path.join(CORPUS, "frames.txt")) as handle:
        return [bytes.fromhex(line.split(": ", 1)[1]) for line in handle if ": " in line and not line.startswith("#")]


def _text(name: str) -> str:
    with open(os.path.join(CORPUS, name)) as handle:
        return handle.read()


SEED_FRAMES = _frames()


@st.composite
def mutated(draw, seeds: list):
    """A seed with random bytes overwritten, inserted, or cut off."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        action = draw(st.sampled_from(("flip", "insert", "truncate")))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "truncate":
            del data[position:]
    return bytes(data)


frames = st.one_of(st.binary(max_size=200), mutated(SEED_FRAMES))
PORTS = [(1, 1), (1, 2), (2, 1), (2, 2), (1, 10), (101, 1)]


@given(st.lists(st.tuples(st.sampled_from(PORTS), frames), max_size=24))
def test_garbage_frames_never_crash_the_controller_or_corrupt_it(packets):
    """Each example starts from a fresh controller, so a failure replays and shrinks on its own;
    within an example up to 24 frames pile up on what the controller knows."""
    net = Net()
    net.announce()
    for (dpid, port), data in packets:
        parse_frame(data)
        for message in net.send(dpid, port, data):
            assert isinstance(message, (FlowAdd, FlowDelete, PacketOut, Barrier))
    # Nothing it knows was corrupted: the hosts are where they are plugged in, the links are
    # the fabric's, and the switches hold exactly the entries of the connections it knows.
    assert {mac: net.core.bindings.location(mac) for mac in ATTACHED} == ATTACHED
    assert sorted(net.core.topology.links()) == sorted(LINKS)
    assert net.disagreements() == []
    # Still serving, and still right: an allowed connection works, a forbidden one does not.
    net.advance(10)  # let any garbage-made guard or drop age out as it would
    allowed = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 33333, 5432)
    net.send(1, 1, allowed)
    assert net.trace(1, 1, allowed) == ("out", *ATTACHED[DB])
    forbidden = tcp(DB, WEB, "10.0.0.2", "10.0.0.1", 33333, 8080)
    sent = net.send(2, 1, forbidden)
    assert not [m for m in sent if isinstance(m, PacketOut) and m.data == forbidden]
    assert net.trace(2, 1, forbidden) == ("drop", 2)


def _yaml_seeds(*names: str) -> list[bytes]:
    return [_text(name).encode() for name in names]


def _mutated_text(seeds):
    return st.one_of(st.text(max_size=300), mutated(seeds).map(lambda b: b.decode("utf-8", "replace")))


def _only_config_errors(parse, text: str, file: str) -> None:
    try:
        parse(load_yaml_text(text, file), file)
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.file == file and (problem.line is None or problem.line >= 1) and problem.message


@given(_mutated_text(_yaml_seeds("directory.yaml")))
def test_directory_parser_answers_garbage_with_file_line_errors(text):
    _only_config_errors(parse_directory, text, "directory.yaml")


@given(_mutated_text(_yaml_seeds("policy.yaml")))
def test_policy_parser_answers_garbage_with_file_line_errors(text):
    _only_config_errors(lambda data, file: parse_policy([(data, file)]), text, "policy.yaml")


@given(_mutated_text(_yaml_seeds("ldap.yaml")))
def test_ldap_settings_parser_answers_garbage_with_file_line_errors(text):
    _only_config_errors(parse_ldap_settings, text, "ldap.yaml")


@given(st.one_of(st.binary(max_size=300), st.just(b"")))
def test_state_loader_answers_garbage_with_a_state_error(tmp_path_factory, raw):
    folder = tmp_path_factory.mktemp("state")
    save_state(str(folder), {"quarantine": []})
    path = state_path(str(folder))
    with open(path, "wb") as handle:
        handle.write(raw)
    try:
        state = load_state(str(folder))
    except StateError as exc:
        assert path in str(exc)
    else:
        assert isinstance(state["quarantine"], list)
