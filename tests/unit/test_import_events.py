"""`segctl import-events` through the real command line: an events.jsonl into a flow store,
bad lines reported by FILE:LINE, a second import of the same file refused."""

import gzip
import json
import os
import time

from segctl.cli import main
from segctl.core.flowlog import ALLOWED, DENIED
from segctl.flowstore import FlowStore

NOW = time.time()
DIRECTORY = """
hosts:
  web: {mac: "02:00:00:00:00:01", labels: {role: web}}
  db: {mac: "02:00:00:00:00:02", labels: {role: db}}
"""
ALLOW = {"kind": "allow", "src": "web", "dst": "db", "proto": "tcp", "dst_port": 5432, "rule": "web-to-db"}
DENY = {"kind": "deny", "src_mac": "02:00:00:00:00:99", "reason": "not a directory host"}


def events_file(tmp_path, lines, name="events.jsonl"):
    path = tmp_path / name
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    if name.endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return str(path)


LINES = [
    {"time": NOW - 60, **ALLOW},
    {"time": NOW - 50, **ALLOW},
    {"time": NOW - 40, **DENY, "repeats": 7},
    {"time": NOW - 30, "kind": "quarantine", "host": "web", "reason": "x"},
    "{not json",
    "[1, 2]",
    "",
    {"time": NOW - 30 * 86400, **ALLOW},  # older than the retention
]


def test_an_events_file_is_imported_with_labels_and_its_bad_lines_named(tmp_path, capsys):
    source = events_file(tmp_path, LINES)
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    store = str(tmp_path / "flows.sqlite")
    assert main(["import-events", source, "--store", store, "--directory", str(tmp_path / "directory.yaml")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{source}: 8 lines read, 3 decisions imported, 1 other event, "
        "1 decision older than the retention left out, 2 lines skipped",
        f"  {source}:5: not JSON",
        f"  {source}:6: not a JSON object (a list)",
    ]
    edges = {(e.src, e.verdict): e for e in FlowStore(store, readonly=True).edges()}
    assert edges[("web", ALLOWED)].flows == 2 and edges[("web", ALLOWED)].src_labels == {"role": "web"}
    assert edges[("02:00:00:00:00:99", DENIED)].flows == 7


def test_the_same_file_is_not_imported_twice_unless_forced(tmp_path, capsys):
    source = events_file(tmp_path, LINES[:3])
    store = str(tmp_path / "flows.sqlite")
    assert main(["import-events", source, "--store", store]) == 0
    os.rename(source, source + ".1")  # rotated: still the same file
    capsys.readouterr()
    assert main(["import-events", source + ".1", "--store", store]) == 1
    error = capsys.readouterr().err
    assert f"{source}.1: not imported: {store}: this file was imported before ({source} on " in error
    assert "--force" in error
    assert sum(e.flows for e in FlowStore(store).edges()) == 9  # not doubled
    assert main(["import-events", source + ".1", "--store", store, "--force"]) == 0
    assert sum(e.flows for e in FlowStore(store).edges()) == 18


def test_gzip_files_several_files_and_a_missing_one(tmp_path, capsys):
    store = str(tmp_path / "flows.sqlite")
    packed = events_file(tmp_path, LINES[:2], "events.jsonl.2.gz")
    plain = events_file(tmp_path, LINES[2:3], "events.jsonl.1")
    missing = str(tmp_path / "nowhere.jsonl")
    assert main(["import-events", packed, missing, plain, "--store", store]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{packed}: 2 lines read, 2 decisions imported, 0 lines skipped",
        f"{plain}: 1 line read, 1 decision imported, 0 lines skipped",
    ]
    assert f"{missing}: not imported: [Errno 2] No such file or directory" in err
    assert sum(e.flows for e in FlowStore(store).edges()) == 9


def test_a_store_that_is_not_one_is_refused_and_left_alone(tmp_path, capsys):
    source = events_file(tmp_path, LINES[:1])
    store = tmp_path / "flows.sqlite"
    store.write_bytes(b"garbage" * 1000)
    assert main(["import-events", source, "--store", str(store)]) == 1
    assert f"{store}: not a readable flow store" in capsys.readouterr().err
    assert store.read_bytes() == b"garbage" * 1000


def test_a_failed_import_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
    import segctl.eventimport as eventimport

    source = events_file(tmp_path, LINES[:3])
    store = str(tmp_path / "flows.sqlite")
    real = eventimport.observation_of

    def breaks_at_the_third(event, seen=[]):  # noqa: B006 - counts the calls
        seen.append(event)
        if len(seen) == 3:
            raise OSError("disk read error")
        return real(event)

    monkeypatch.setattr(eventimport, "observation_of", breaks_at_the_third)
    assert main(["import-events", source, "--store", store]) == 1
    assert "disk read error" in capsys.readouterr().err
    assert FlowStore(store).edges() == [] and FlowStore(store).stats()["decisions"] == 0
    monkeypatch.setattr(eventimport, "observation_of", real)
    assert main(["import-events", source, "--store", store]) == 0  # not remembered as imported
