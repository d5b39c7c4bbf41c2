"""The pipeline declared as data: every entry segctl makes is within its band, anything else is
refused; cookies say which band and which connection an entry is of, and the masks select exactly
what they are meant to; the README's table is the declaration's."""

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segctl.core import planner
from segctl.core.connections import Connection, FlowKey
from segctl.core.directory import Host
from segctl.core.flows import FlowDelete, match_of
from segctl.core.pipeline import (
    CONNECTION_BANDS,
    CONNECTION_ID_LIMIT,
    FIELDS,
    HOST_ID_LIMIT,
    PIPELINE,
    Band,
    Kind,
    OutsideBand,
    band_of,
    check_entry,
    connection_cookie,
    connections_cookie,
    cookie_ids,
    host_cookie,
    kind_cookie,
    make_cookie,
    ours_cookie,
    parse_cookie,
    pipeline_table_markdown,
)
from segctl.core.topology import Hop

from ..fakeswitch import FakeFabric

WEB, DB = "02:00:00:00:00:01", "02:00:00:00:00:02"
PATH = [Hop(1, 1, 10), Hop(101, 1, 2), Hop(2, 10, 1)]
LINKS = [(1, 10, 101, 1), (2, 10, 101, 2)]
README = Path(__file__).resolve().parents[2] / "README.md"


def connection(host_id=3, ident=77, sport=40000, proto=6, stateful=False) -> Connection:
    key = FlowKey(WEB, DB, "10.0.0.1", "10.0.0.2", proto, sport, 5432)
    if stateful:
        key = key.service()
    return Connection(
        id=ident,
        key=key,
        src=Host("web", WEB, "10.0.0.1"),
        dst=Host("db", DB, "10.0.0.2"),
        rule="r",
        path=list(PATH),
        created=0.0,
        cookie=make_cookie(Kind.CONNECTION, host_id, ident),
        reply_key=key.reverse(),
        stateful=stateful,
    )


def samples() -> dict:
    """One entry of each band, as the planner makes it."""
    tcp = connection()
    service = {band_of(e.cookie).name: e for e in planner.plan_connection(connection(stateful=True))}
    return {
        "quarantine": planner.plan_quarantine(1, 3, WEB)[0],
        "guard": planner.plan_guard(1, 2, WEB, "10.0.0.1"),
        "deny": planner.plan_deny(1, 1, tcp.key),
        "server-drop": planner.plan_connection(tcp)[0],
        "connection": planner.plan_connection(tcp)[1],
        "fragments": planner.plan_later_fragments(tcp, tcp.key.pair)[0],
        "service": service["service"],
        "service-track": service["service-track"],
        "service-reply": service["service-reply"],
        "flood": planner.plan_flood_drop(1, 1, 5),
        "punt-opening": planner.plan_metered_punts(1, 1, 10, 5)[1],
        "punt-metered": planner.plan_metered_punts(1, 1, 10, 5)[2],
        "punt": planner.plan_switch_base(1)[1],
        "miss": planner.plan_switch_base(1)[0],
    }


SAMPLES = samples()
BANDS = {band.name: band for band in PIPELINE}


def test_the_pipeline_is_ordered_by_priority_and_each_band_has_its_own_kind():
    assert [(b.table, -b.priority) for b in PIPELINE] == sorted((b.table, -b.priority) for b in PIPELINE)
    assert sorted(b.kind for b in PIPELINE) == sorted(Kind)
    assert len(BANDS) == len(PIPELINE) == len(SAMPLES)
    assert [b.kind.name for b in CONNECTION_BANDS] == [
        "SERVER_DROP", "CONNECTION", "FRAGMENTS", "SERVICE", "SERVICE_TRACK", "SERVICE_REPLY",
    ]  # fmt: skip
    assert [b.ids for b in CONNECTION_BANDS] == ["connection"] * 6


def test_a_band_declared_wrong_is_refused_at_once():
    with pytest.raises(ValueError, match="connection-scoped"):
        Band("x", 20000, Kind.CONNECTION, "output", "a connection's entries without its ids")
    with pytest.raises(ValueError, match="connection-scoped"):
        Band("x", 30000, Kind.DENY, "drop", "a switch-wide kind with a connection's ids", ids="connection")
    with pytest.raises(ValueError, match="action"):
        Band("x", 30000, Kind.DENY, "mirror", "no such action")


@pytest.mark.parametrize("name", BANDS)
def test_every_band_s_entry_is_within_its_band_and_its_cookie_names_it(name):
    entry, band = SAMPLES[name], BANDS[name]
    band.check(entry)
    check_entry(entry)
    assert band_of(entry.cookie) is band
    for other in PIPELINE:
        if other is not band:
            assert other.problem(entry) is not None


def mutations(band, entry):
    """(what, entry) pairs, each outside the band."""
    match = dict(entry.match)
    allowed = band.required | band.optional | band.one_of
    stray = next(name for name in FIELDS if name not in allowed)
    yield "stray field", dataclasses.replace(entry, match=match_of(**match, **{stray: 1}))
    for name in band.required:
        yield f"no {name}", dataclasses.replace(entry, match=match_of(**{k: v for k, v in match.items() if k != name}))
    for name, values in band.values:
        wrong = (1, 1) if isinstance(values[0], tuple) else 0x86DD
        yield f"{name} pinned", dataclasses.replace(entry, match=match_of(**dict(match, **{name: wrong})))
    if band.one_of:
        yield (
            "none of",
            dataclasses.replace(entry, match=match_of(**{k: v for k, v in match.items() if k not in band.one_of})),
        )
        yield "both", dataclasses.replace(entry, match=match_of(**dict(match, **dict.fromkeys(band.one_of, WEB))))
    yield "priority", dataclasses.replace(entry, priority=entry.priority + 1)
    yield "table", dataclasses.replace(entry, table_id=entry.table_id + 1)
    for kind in Kind:
        if kind != band.kind:
            yield f"kind {kind.name}", dataclasses.replace(entry, cookie=make_cookie(kind, *cookie_ids(entry.cookie)))
    yield "foreign cookie", dataclasses.replace(entry, cookie=entry.cookie ^ (1 << 63))
    if band.ids != "connection":
        yield "connection id", dataclasses.replace(entry, cookie=entry.cookie | 1)
    if not band.ids:
        yield "host id", dataclasses.replace(entry, cookie=entry.cookie | 1 << 32)
    other_action = {
        "drop": (("output", 2),),
        "output": (),
        "controller": (),
        "commit-output": (("output", 2),),  # forwarded, never committed
        "track": (("ct_track", 1, 1),),  # another zone
    }[band.action]
    yield "action", dataclasses.replace(entry, actions=other_action)
    yield "two actions", dataclasses.replace(entry, actions=entry.actions * 2 or (("output", 2),) * 2)
    yield "meter", dataclasses.replace(entry, meter=None if band.metered else 1)
    yield "idle", dataclasses.replace(entry, idle_timeout=0 if band.idle is None else 7)
    yield "hard", dataclasses.replace(entry, hard_timeout=0 if band.hard is None else 7)
    if not band.notifies:
        yield "notify", dataclasses.replace(entry, notify_removed=True)


@pytest.mark.parametrize("name", BANDS)
def test_an_entry_outside_its_band_raises(name):
    band = BANDS[name]
    for what, entry in mutations(band, SAMPLES[name]):
        with pytest.raises(OutsideBand):
            check_entry(entry)
        assert band.problem(entry) is not None, what


# What `Band.problem` says about each kind of mutation, the start of it.
PROBLEMS = {
    "stray field": "match has [",
    "no ": "match lacks [",
    "none of": "match has not exactly one of [",
    "both": "match has not exactly one of [",
    "priority": "priority ",
    "table": "table ",
    "kind ": "cookie 0x",
    "foreign cookie": "cookie 0x",
    "connection id": "cookie 0x",
    "host id": "cookie 0x",
    "action": "actions ",
    "two actions": "actions ",
    "idle": "idle timeout ",
    "hard": "hard timeout ",
    "notify": "reports its removal",
}


@pytest.mark.parametrize("name", BANDS)
def test_a_band_seeing_a_match_s_fields_for_the_first_time_says_what_is_wrong(name):
    """Each check on a band that has not met the entries' shapes before (a copy of it: the
    shapes are worked out once per band), twice, with what it says: the first sight of a shape
    and the remembered one agree."""
    band = dataclasses.replace(BANDS[name])
    entry = SAMPLES[name]
    assert band.problem(entry) is None and band.problem(entry) is None
    for what, wrong in mutations(band, entry):
        first, again = band.problem(wrong), band.problem(wrong)
        assert first == again and first is not None, what
        if what.endswith(" pinned"):
            field = what.removesuffix(" pinned")
            assert first.startswith(f"{field}=") and first.endswith(f"not one of {dict(band.values)[field]!r}")
        elif what == "meter":
            assert first == ("meter None, not metered" if band.metered else "meter 1 in an unmetered band")
        else:
            start = PROBLEMS.get(what) or next(v for k, v in PROBLEMS.items() if what.startswith(k))
            assert first.startswith(start), (what, first)
        if what == "stray field" or what.startswith("no "):
            assert first.endswith(f"[{what.removeprefix('no ')!r}]") or what == "stray field"
        with pytest.raises(OutsideBand, match=f"^{band.name} band: "):
            band.check(wrong)
        with pytest.raises(OutsideBand, match=f"^({name}|[a-z-]+) band: |^cookie 0x[0-9a-f]+ names no band: "):
            check_entry(wrong)


def test_a_stray_or_missing_field_is_named():
    guard = dataclasses.replace(BANDS["guard"])
    entry = SAMPLES["guard"]
    lacking = dataclasses.replace(entry, match=match_of(in_port=2))
    assert guard.problem(lacking) == "match lacks ['eth_src']"
    stray = dataclasses.replace(entry, match=match_of(**dict(entry.match), tcp_dst=22))
    assert guard.problem(stray) == "match has ['tcp_dst']"
    assert guard.problem(dataclasses.replace(entry, cookie=entry.cookie ^ 1 << 63)).endswith(" is not of kind GUARD")
    with pytest.raises(OutsideBand, match=r"^cookie 0x[0-9a-f]+ names no band: FlowAdd\("):
        check_entry(dataclasses.replace(entry, cookie=0))


@pytest.mark.parametrize("actions", [(("output",),), (("group", 2),), (("output", 2, 3),), (("controller",),)])
def test_an_output_band_s_entry_outputs_to_one_port(actions):
    entry = dataclasses.replace(SAMPLES["connection"], actions=actions)
    assert BANDS["connection"].problem(entry) == f"actions {actions!r}, not one output"


def test_the_builder_asks_for_what_the_band_leaves_open():
    connection_band = BANDS["connection"]
    with pytest.raises(OutsideBand, match="port"):
        connection_band.entry(1, SAMPLES["connection"].match, idle=60)  # an output, to where?
    with pytest.raises(OutsideBand, match="idle"):
        connection_band.entry(1, SAMPLES["connection"].match, (("output", 2),))  # idle by protocol
    with pytest.raises(OutsideBand, match="hard"):
        BANDS["flood"].entry(1, match_of(in_port=1))  # configured
    assert BANDS["deny"].entry(1, SAMPLES["deny"].match) == SAMPLES["deny"]  # the band's own hold


KINDS = st.sampled_from(list(Kind))
HOSTS = st.integers(0, HOST_ID_LIMIT - 1)
IDS = st.integers(0, CONNECTION_ID_LIMIT - 1)


def selects(selector: tuple[int, int], cookie: int) -> bool:
    """Whether a FlowDelete with this (cookie, mask) takes an entry with `cookie` (OF1.3 6.4)."""
    wanted, mask = selector
    return cookie & mask == wanted & mask


@given(KINDS, HOSTS, IDS)
def test_cookies_round_trip_and_name_their_band(kind, host, ident):
    cookie = make_cookie(kind, host, ident)
    assert parse_cookie(cookie) == (kind, host, ident)
    assert cookie_ids(cookie) == (host, ident)
    assert band_of(cookie).kind == kind
    assert parse_cookie(cookie ^ 1 << 60) is None and band_of(cookie ^ 1 << 60) is None  # not segctl's magic


@given(KINDS, HOSTS, IDS, KINDS, HOSTS, IDS)
def test_masks_select_exactly_their_entries(kind, host, ident, other_kind, other_host, other_ident):
    mine = make_cookie(Kind.CONNECTION, host, ident)
    cookie = make_cookie(other_kind, other_host, other_ident)
    same_connection = (host, ident) == (other_host, other_ident)
    # One connection's entries, of every connection band, and nothing of another connection or host.
    assert selects(connection_cookie(mine), cookie) == (other_kind.connection_scoped and same_connection)
    assert selects(connection_cookie(make_cookie(kind, host, ident)), cookie) == (
        kind.connection_scoped == other_kind.connection_scoped and same_connection
    )
    assert selects(connections_cookie(), cookie) == other_kind.connection_scoped
    assert selects(kind_cookie(kind), cookie) == (kind == other_kind)
    assert selects(host_cookie(kind, host), cookie) == (kind == other_kind and host == other_host)
    assert selects(ours_cookie(), cookie) and not selects(ours_cookie(), cookie ^ 1 << 57)


def test_one_delete_per_switch_revokes_a_connection_and_nothing_else():
    fabric = FakeFabric(LINKS)
    revoked, sibling, stranger = connection(3, 77), connection(3, 78, sport=40001), connection(4, 77, sport=40002)
    udp = connection(3, 77, proto=17)  # the revoked connection's later fragments (UDP: they have some)
    for c in (revoked, sibling, stranger):
        fabric.apply(planner.plan_connection(c) + planner.plan_later_fragments(c, c.key.pair))
    fabric.apply(planner.plan_later_fragments(udp, udp.key.pair))
    before = fabric.entries()
    assert {band_of(e.cookie).name for e in before} == {"server-drop", "connection", "fragments"}
    revoke = planner.plan_revoke(revoked)
    assert len([m for m in revoke if isinstance(m, FlowDelete)]) == len(revoked.switches)
    fabric.apply(revoke)
    assert fabric.entries() == [e for e in before if cookie_ids(e.cookie) != (3, 77)]
    assert {cookie_ids(e.cookie) for e in fabric.entries()} == {(3, 78), (4, 77)}


def test_a_quarantine_forgets_every_connection_entry_of_the_host_and_keeps_the_rest():
    fabric = FakeFabric(LINKS)
    c = connection()
    fabric.apply(planner.plan_switch_base(1) + planner.plan_connection(c) + planner.plan_later_fragments(c, c.key.pair))
    fabric.apply(planner.plan_quarantine(1, 5, WEB) + [planner.plan_guard(1, 3, "02:00:00:00:00:03")])
    fabric.apply(planner.plan_forget_connections_of(1, DB))  # DB's connections: web's with it
    left = {band_of(e.cookie).name for e in fabric.entries(1)}
    assert left == {"miss", "punt", "quarantine", "guard"}
    fabric.apply([planner.plan_release(1, 5)])
    assert {band_of(e.cookie).name for e in fabric.entries(1)} == {"miss", "punt", "guard"}
    fabric.apply(planner.plan_clear_kinds(1, (Kind.GUARD,)))
    assert {band_of(e.cookie).name for e in fabric.entries(1)} == {"miss", "punt"}
    fabric.apply([planner.plan_wipe(1)])
    assert fabric.entries(1) == []


def test_a_port_beyond_the_meter_ids_gets_no_metered_punts():
    assert planner.plan_metered_punts(1, planner.METER_ID_MAX + 1, 10, 5) == []
    meter, opening, arp, ipv4 = planner.plan_metered_punts(1, planner.METER_ID_MAX, 10, 5)
    assert (meter.meter_id, opening.meter, arp.meter, ipv4.meter) == (planner.METER_ID_MAX,) * 4


def test_the_readme_s_pipeline_table_is_the_declaration():
    table = pipeline_table_markdown()
    assert len(table.splitlines()) == 2 + len(PIPELINE)
    assert "\n" + table + "\n" in README.read_text(), "README.md: paste `python -m segctl.core.pipeline`"
