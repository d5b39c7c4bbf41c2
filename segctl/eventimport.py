"""`segctl import-events`: an events.jsonl (recorded by an older segctl, or on another
controller) into a flow store. The file is streamed (it can be 100 MB), its decisions read with
the same `observation_of` live recording uses, and written in one transaction: a failed import
leaves nothing behind. The store remembers each file by its first line, so importing it twice
(or a rotated copy of it) does not count its decisions twice."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from .core.flowlog import Observation, observation_of
from .flowstore import FlowStore

SHOWN_PROBLEMS = 5  # skipped lines quoted in the report; the rest only counted


@dataclass
class ImportReport:
    file: str
    lines: int = 0
    decisions: int = 0
    other_events: int = 0  # quarantine, reload...: events that are no decision
    too_old: int = 0  # decisions older than the store's retention
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def skip(self, line: int, why: str) -> None:
        self.skipped += 1
        if len(self.problems) < SHOWN_PROBLEMS:
            self.problems.append(f"{self.file}:{line}: {why}")

    def summary(self) -> str:
        parts = [f"{_many(self.lines, 'line')} read", f"{_many(self.decisions, 'decision')} imported"]
        if self.other_events:
            parts.append(f"{_many(self.other_events, 'other event')}")
        if self.too_old:
            parts.append(f"{_many(self.too_old, 'decision')} older than the retention left out")
        parts.append(f"{_many(self.skipped, 'line')} skipped")
        return f"{self.file}: {', '.join(parts)}"


def _many(count: int, thing: str) -> str:
    return f"{count} {thing}{'' if count == 1 else 's'}"


def _open(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")  # noqa: SIM115 - closed by the caller


def fingerprint(path: str) -> str | None:
    """What identifies the file however it is later renamed or grown: its first line's hash
    (a decision's time has microseconds). None for an empty file."""
    with _open(path) as handle:
        first = handle.readline(1 << 16)
    return hashlib.sha256(first).hexdigest() if first.strip() else None


def observations(path: str, report: ImportReport, oldest: float) -> Iterator[Observation]:
    """The file's decisions at or after `oldest`, one line at a time; what is not one is counted."""
    with _open(path) as handle:
        for number, raw in enumerate(handle, 1):
            report.lines += 1
            if not raw.strip():
                continue
            try:
                event = json.loads(raw)
            except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                report.skip(number, "not JSON")
                continue
            if not isinstance(event, dict):
                report.skip(number, f"not a JSON object (a {type(event).__name__})")
                continue
            observation = observation_of(event)
            if observation is None:
                report.other_events += 1
            elif observation.time < oldest:
                report.too_old += 1
            else:
                report.decisions += 1
                yield observation


def import_file(
    store: FlowStore, path: str, labels: Mapping[str, Mapping[str, str]], force: bool = False, now: float | None = None
) -> ImportReport:
    """Imports one file. Raises OSError for a file that cannot be read, StoreError (or its
    AlreadyImported) for a store that refuses it; either way nothing of the file is kept."""
    report = ImportReport(path)
    mark = fingerprint(path)
    if mark is None:
        return report
    now = time.time() if now is None else now
    described = f"{os.path.abspath(path)} on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(now))}"
    store.import_observations(observations(path, report, now - store.retention), labels.get, mark, described, force)
    return report


def _directory_labels(spec: str | None) -> dict[str, Mapping[str, str]]:
    """Labels by host name from --directory (YAML or LDAP); none without it. Raises ConfigError."""
    if spec is None:
        return {}
    from .config import open_directory
    from .core.errors import ConfigError, ConfigProblem, DirectoryRefused, DirectoryUnavailable

    try:
        directory, _ = open_directory(spec).read()
    except (DirectoryRefused, DirectoryUnavailable) as exc:
        raise ConfigError([ConfigProblem(spec, None, str(exc))]) from None
    return {host.name: host.labels for host in directory}


def run_import(args) -> int:
    """The command: each FILE into --store; exit 0 when all were imported, else 1."""
    from .core.errors import ConfigError
    from .core.textsafe import printable
    from .flowstore import StoreError

    try:
        labels = _directory_labels(args.directory)
        store = FlowStore(args.store, args.retention)
    except ConfigError as exc:
        for config_problem in exc.problems:
            print(printable(config_problem), file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"segctl import-events: {printable(exc)}", file=sys.stderr)
        return 1
    failed = False
    for path in args.files:
        try:
            report = import_file(store, path, labels, args.force)
        except (OSError, StoreError) as exc:
            # OSError's text names the file; StoreError's names the store.
            print(f"segctl import-events: {printable(path)}: not imported: {printable(exc)}", file=sys.stderr)
            failed = True
            continue
        print(printable(report.summary()))
        for problem in report.problems:
            print(f"  {printable(problem)}")
        if report.skipped > len(report.problems):
            print(f"  ... and {report.skipped - len(report.problems)} more")
    return 1 if failed else 0
