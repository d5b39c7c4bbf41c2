"""The event log: log lines no user value can forge, repeated denials folded into one record per
source and reason per interval, events.jsonl rotated by size."""

import io
import json
import logging
import os

import pytest

from segctl.cli import build_parser
from segctl.core.events import EventLog

from .helpers import Clock

# A reason as an attacker would write it: a forged log record after a newline, a line separator,
# a terminal escape and NEL (U+0085, a line break to str.splitlines).
EVIL = "EDR alert\n2026-01-01 00:00:00,000 WARNING segctl.api: fake line\u2028more\x1b[2J\u0085end"
MAC = "02:00:00:00:00:09"


# -- log injection -------------------------------------------------------------------------------
def test_a_forged_reason_stays_one_line_in_the_event_log_line(caplog):
    caplog.set_level(logging.INFO, logger="segctl.events")
    EventLog(clock=lambda: 1.0).record("quarantine", host="web1", reason=EVIL, by="soc")
    (message,) = [record.getMessage() for record in caplog.records]
    assert message.splitlines() == [message]
    assert "\\n2026-01-01" in message and "\\u2028" in message and "\\x1b" in message and "\\x85" in message


def test_a_value_cannot_forge_another_field_of_the_log_line(caplog):
    caplog.set_level(logging.INFO, logger="segctl.events")
    EventLog(clock=lambda: 1.0).record("quarantine", host="web1", reason="EDR by=admin", by="soc")
    assert caplog.records[0].getMessage() == 'quarantine host=web1 reason="EDR by=admin" by=soc'


def test_every_log_record_segctl_writes_is_one_line_and_a_traceback_is_indented():
    from segctl.launch import log_handler

    stream = io.StringIO()
    logger = logging.getLogger("segctl.test-injection")
    logger.propagate = False
    logger.addHandler(log_handler(stream))
    try:
        logger.warning("directory entry left out: %s", EVIL)
        try:
            raise ValueError(EVIL)
        except ValueError:
            logger.exception("API request GET %s failed", "/v1/hosts/" + EVIL)
    finally:
        logger.handlers.clear()
    lines = stream.getvalue().splitlines()
    records = [line for line in lines if not line.startswith(" ")]
    assert [line.split(" ")[2] for line in records] == ["WARNING", "ERROR"]
    assert all("segctl.test-injection: " in line and "\\n2026-01-01" in line for line in records)
    traceback = lines[lines.index(records[1]) + 1 :]
    assert traceback[0] == "    Traceback (most recent call last):" and "    ValueError: EDR alert" in traceback
    assert all(line.startswith("    ") for line in traceback)  # a forged line in it cannot pass for a record


def test_a_traceback_another_handler_formatted_first_is_indented_too():
    from segctl.launch import log_handler

    record = logging.LogRecord("segctl.api", logging.ERROR, __file__, 1, "failed", None, None)
    record.exc_text = f"Traceback (most recent call last):\nValueError: {EVIL}"  # cached by another handler
    lines = log_handler(io.StringIO()).format(record).splitlines()
    assert lines[0].endswith(" ERROR segctl.api: failed") and all(line.startswith("    ") for line in lines[1:])


def test_json_lines_escape_line_separators_too(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path), clock=lambda: 1.0)
    log.record("quarantine", host="web1", reason=EVIL)
    log.close()
    text = path.read_text(encoding="utf-8")
    assert text.isascii() and len(text.splitlines()) == 1
    assert json.loads(text)["reason"] == EVIL


# -- repeated denials ----------------------------------------------------------------------------
def deny(log, now, src=MAC, reason="unknown host", **fields):
    log.record("deny", now, src_mac=src, reason=reason, **fields)


def test_the_first_denial_is_recorded_at_once_and_its_repeats_only_counted():
    log = EventLog(clock=Clock())
    deny(log, 100.0, port=1)
    assert log.latest() == [{"time": 100.0, "kind": "deny", "src_mac": MAC, "reason": "unknown host", "port": 1}]
    for n in range(1, 50):
        deny(log, 100.0 + n / 10, port=1 + n)
    log.flush()
    assert len(log.latest()) == 1


def test_when_the_interval_is_over_one_summary_says_how_many_and_until_when():
    clock = Clock(100.0)
    log = EventLog(clock=clock)
    for now, port in ((100.0, 1), (101.0, 2), (105.0, 3)):
        deny(log, now, port=port)
    clock.now = 109.9
    log.flush()
    assert len(log.latest()) == 1
    clock.now = 110.0
    log.flush()
    first, summary = log.latest()
    assert first["port"] == 1 and "repeats" not in first
    assert summary == {
        "time": 110.0,
        "kind": "deny",
        "src_mac": MAC,
        "reason": "unknown host",
        "port": 3,
        "repeats": 2,
        "until": 105.0,
    }
    deny(log, 111.0, port=4)  # a new interval: its first denial is recorded at once again
    assert log.latest()[-1] == {"time": 111.0, "kind": "deny", "src_mac": MAC, "reason": "unknown host", "port": 4}


def test_a_later_record_writes_the_summary_before_itself():
    log = EventLog(clock=Clock(0.0))
    deny(log, 100.0)
    deny(log, 101.0)
    log.record("allow", 112.0, src="web1", dst="db1")
    assert [(e["kind"], e["time"], e.get("repeats")) for e in log.latest()] == [
        ("deny", 100.0, None),
        ("deny", 112.0, 1),
        ("allow", 112.0, None),
    ]


def test_distinct_sources_and_reasons_are_not_merged():
    clock = Clock(100.0)
    log = EventLog(clock=clock)
    for _ in range(2):
        deny(log, 100.0, src="02:00:00:00:00:01", reason="r1")
        deny(log, 100.0, src="02:00:00:00:00:02", reason="r1")
        deny(log, 100.0, src="02:00:00:00:00:01", reason="r2")
        log.record("deny", 100.0, src="web1", reason="r1")  # no MAC: the host name is the source
        log.record("allow", 100.0, src="web1", dst="db1")  # only denials are folded
    clock.now = 120.0
    log.flush()
    events = log.latest()
    firsts = [(e["kind"], e.get("src_mac") or e["src"], e.get("reason")) for e in events[:6]]
    assert firsts == [
        ("deny", "02:00:00:00:00:01", "r1"),
        ("deny", "02:00:00:00:00:02", "r1"),
        ("deny", "02:00:00:00:00:01", "r2"),
        ("deny", "web1", "r1"),
        ("allow", "web1", None),
        ("allow", "web1", None),
    ]
    assert [e["repeats"] for e in events[6:]] == [1, 1, 1, 1]


def test_the_table_of_repeats_is_bounded_and_the_oldest_is_summed_up_to_make_room():
    log = EventLog(clock=Clock(0.0), repeat_keys=3)
    for n in range(4):
        deny(log, 100.0 + n, src=f"02:00:00:00:00:0{n}")
        deny(log, 100.5 + n, src=f"02:00:00:00:00:0{n}")
    sources = [(e["src_mac"][-1], e.get("repeats")) for e in log.latest()]
    assert sources == [("0", None), ("1", None), ("2", None), ("0", 1), ("3", None)]
    deny(log, 104.0, src="02:00:00:00:00:00")  # forgotten to make room: recorded afresh
    assert [(e["src_mac"][-1], e.get("repeats")) for e in log.latest()[-2:]] == [("1", 1), ("0", None)]


def test_closing_writes_the_pending_summaries_and_ring_and_file_agree(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path), clock=Clock(103.0))
    for n in range(5):
        deny(log, 100.0 + n / 2, port=n)
    log.record("allow", 102.0, src="web1", dst="db1")
    log.close()
    written = [json.loads(line) for line in path.read_text().splitlines()]
    assert written == log.latest()
    assert [(e["kind"], e.get("repeats")) for e in written] == [("deny", None), ("allow", None), ("deny", 4)]


def test_records_put_off_are_recorded_as_each_in_turn_when_the_log_is_next_used(tmp_path):
    fields = [
        {"src": "web1", "dst": "db1", "rule": "r", "reason": "web1 quarantined", "src_port": 40000 + n}
        for n in range(3)
    ] + [{"src": "web1", "dst": "db1", "rule": None, "reason": "web1 quarantined", "src_port": None}]
    tapped: list[str] = []
    one, many = EventLog(str(tmp_path / "one.jsonl")), EventLog(str(tmp_path / "many.jsonl"))
    many.tap = tapped.append
    for each in fields:
        one.record("allow", 100.0000004, **each)
    many.record_later("allow", 100.0000004, iter(fields))
    many.record_later("revoke", 100.0000004, iter(fields))  # (not a decision: never tapped)
    for each in fields:
        one.record("revoke", 100.0000004, **each)
    assert tapped == []  # put off ...
    one.close()
    many.close()
    assert many.latest() == one.latest()  # ... until read, flushed or closed
    assert [json.loads(text) for text in tapped] == many.latest()[: len(fields)]
    assert [list(e) for e in many.latest()] == [list(e) for e in one.latest()]  # the same order of keys
    assert "rule" not in many.latest()[-1] and many.latest()[0]["time"] == 100.0
    assert (tmp_path / "many.jsonl").read_text() == (tmp_path / "one.jsonl").read_text()


def test_records_put_off_keep_their_place_before_any_record_after_them():
    log = EventLog(clock=Clock(0.0))
    log.record("allow", 1.0, rule="r1")
    log.record_later("revoke", 2.0, [{"rule": "r1"}, {"rule": "r2"}])
    log.record_later("quarantine", 2.0, [{"host": "web1"}])
    log.record("allow", 3.0, rule="r3")
    assert [(e["kind"], e["time"]) for e in log.latest()] == [
        ("allow", 1.0),
        ("revoke", 2.0),
        ("revoke", 2.0),
        ("quarantine", 2.0),
        ("allow", 3.0),
    ]


def test_records_reach_the_file_when_it_is_flushed_and_at_once_past_the_limit(tmp_path, monkeypatch):
    from segctl.core import events

    path = tmp_path / "events.jsonl"
    log = EventLog(str(path), clock=Clock(0.0))
    allow(log, 1)
    assert path.read_text() == ""  # (the file is flushed every 0.1 s by the controller)
    log.flush()
    assert [e["rule"] for e in read(path)] == ["r01"]
    monkeypatch.setattr(events, "UNWRITTEN_LIMIT", 3)
    for n in range(2, 5):
        allow(log, n)
    assert log._unwritten == []  # turned into text as the third came (in the file's buffer)
    log.close()
    assert [e["rule"] for e in read(path)] == ["r01", "r02", "r03", "r04"]


# -- rotation ------------------------------------------------------------------------------------
def allow(log, n):
    log.record("allow", float(n), rule=f"r{n:02d}", src="web1", dst="db1")


def files(folder):
    return sorted(os.listdir(folder))


def read(path):
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")  # whole records only
    return [json.loads(line) for line in text.splitlines()]


def test_events_file_rotates_by_size_keeping_n_old_files(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path), clock=Clock(0.0), max_bytes=320, keep_files=2)
    line = len(json.dumps({"dst": "db1", "kind": "allow", "rule": "r00", "src": "web1", "time": 0.0}) + "\n")
    assert 320 // line == 4  # four records a file
    for n in range(40):
        allow(log, n)
    log.close()
    assert files(tmp_path) == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    kept = [read(tmp_path / name) for name in ("events.jsonl.2", "events.jsonl.1", "events.jsonl")]
    assert all(os.path.getsize(tmp_path / name) <= 320 for name in files(tmp_path))
    assert [len(records) for records in kept] == [4, 4, 4]
    assert [e["rule"] for records in kept for e in records] == [f"r{n:02d}" for n in range(28, 40)]


def test_a_record_is_never_split_and_one_longer_than_the_limit_gets_a_file_alone(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path), clock=Clock(0.0), max_bytes=200, keep_files=5)
    allow(log, 1)
    log.record("quarantine", 2.0, host="web1", reason="x" * 500)
    allow(log, 3)
    log.close()
    assert files(tmp_path) == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    assert [e["kind"] for e in read(tmp_path / "events.jsonl.2")] == ["allow"]
    assert [e["reason"] for e in read(tmp_path / "events.jsonl.1")] == ["x" * 500]
    assert [e["rule"] for e in read(path)] == ["r03"]


def test_an_existing_file_counts_toward_the_limit_and_keep_zero_keeps_no_old_file(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"kind": "old"}\n' * 20)  # 320 bytes from the last run
    log = EventLog(str(path), clock=Clock(0.0), max_bytes=330, keep_files=0)
    allow(log, 1)
    log.close()
    assert files(tmp_path) == ["events.jsonl"]
    assert [e["rule"] for e in read(path)] == ["r01"]


def test_max_bytes_zero_never_rotates(tmp_path):
    log = EventLog(str(tmp_path / "events.jsonl"), clock=Clock(0.0), max_bytes=0)
    for n in range(100):
        allow(log, n)
    log.close()
    assert files(tmp_path) == ["events.jsonl"]
    assert len(read(tmp_path / "events.jsonl")) == 100


# -- `segctl run` options --------------------------------------------------------------------------
RUN = ["run", "--directory", "d.yaml", "--policy", "p.yaml"]


def test_run_rotates_events_at_100_mib_keeping_5_files_by_default():
    args = build_parser().parse_args(RUN)
    assert (args.events_max_bytes, args.events_keep) == (100 * 1024 * 1024, 5)


def test_run_passes_the_events_file_options_to_the_event_log(tmp_path):
    from segctl.launch import open_events

    args = build_parser().parse_args([*RUN, "--events-max-bytes", "320", "--events-keep", "1"])
    log = open_events(args, str(tmp_path))
    for n in range(20):
        allow(log, n)
    log.close()
    assert files(tmp_path) == ["events.jsonl", "events.jsonl.1"]
    assert [e["rule"] for e in read(tmp_path / "events.jsonl.1")] == ["r12", "r13", "r14", "r15"]


@pytest.mark.parametrize("option", ["--events-max-bytes", "--events-keep"])
@pytest.mark.parametrize("value", ["-1", "lots"])
def test_run_refuses_a_negative_or_malformed_events_option(option, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*RUN, option, value])
    assert exit_.value.code == 2 and f"argument {option}: " in capsys.readouterr().err


def test_a_record_is_encoded_as_it_is_recorded_a_denial_and_records_put_off_when_written(tmp_path):
    # The flush every 0.1 s would otherwise encode hundreds at once, every switch waiting.
    log = EventLog(str(tmp_path / "events.jsonl"), clock=Clock(0.0))
    log.record("allow", 1.0, rule="r1")
    log.record("deny", 1.0, src="web1", reason="no rule")
    log.record_later("revoke", 2.0, [{"rule": "r1"}])
    log.record("switch-up", 3.0, dpid=1)
    assert [type(r) for r in log._unwritten] == [str, dict, dict, str]
    log.flush()
    assert [e["kind"] for e in read(tmp_path / "events.jsonl")] == ["allow", "deny", "revoke", "switch-up"]
