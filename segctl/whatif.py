"""`segctl replay`: a draft policy replayed against the recorded flows, from the API or a store file.

Exit status: 0 when no flow forwarded now would be denied by the draft, 3 when some would
(BREAKS_EXIT_STATUS: a CI gate), 1 for a draft, directory or store with problems, 2 for usage.
"""

from __future__ import annotations

import json
import os
import sys
import time

from .config import open_directory
from .core.decision import DecisionIndex
from .core.errors import ConfigError, DirectoryRefused, DirectoryUnavailable
from .core.flowlog import labels_in
from .core.policy import load_policy
from .core.replay import BREAKS_EXIT_STATUS, replay
from .core.textsafe import printable

SIMULATE_TIMEOUT = 300.0  # seconds the API may take to replay a large store


def run_replay(args) -> int:
    if args.store and args.api:
        print("segctl replay: give --api URL or --store PATH, not both", file=sys.stderr)
        return 2
    if args.directory and not args.store:
        print(
            "segctl replay: --directory is for --store (online, the controller's directory labels the hosts)",
            file=sys.stderr,
        )
        return 2
    try:
        draft = load_policy(args.policy)  # problems show as FILE:LINE here, before anything is sent
    except ConfigError as exc:
        for problem in exc.problems:
            print(printable(problem))
        return 1
    try:
        body = _offline(args, draft) if args.store else _online(args)
    except _Refused as exc:
        print(f"segctl replay: {printable(exc)}", file=sys.stderr)
        for problem in exc.problems:
            print(printable(problem), file=sys.stderr)
        return exc.status
    print(json.dumps(body, indent=2, sort_keys=True) if args.json else render_replay(body, args.policy))
    return BREAKS_EXIT_STATUS if body["newly_denied"]["flows"] else 0


class _Refused(Exception):
    def __init__(self, message: str, problems: list | None = None, status: int = 1):
        super().__init__(message)
        self.problems = problems or []
        self.status = status


def _online(args) -> dict:
    from .client import ClientError, call

    if os.path.isdir(args.policy):
        raise _Refused(
            f"--policy {args.policy} is a folder; the API takes one policy file: merge it into one, "
            "or replay offline with --store",
            status=2,
        )
    with open(args.policy, encoding="utf-8") as handle:  # load_policy read it a moment ago
        text = handle.read()
    try:
        status, body = call(
            args,
            "POST",
            f"/v1/policy/simulate?since={args.since:g}&top={args.top}",
            yaml_text=text,
            timeout=SIMULATE_TIMEOUT,
        )
    except ClientError as exc:
        raise _Refused(str(exc)) from None
    if status >= 400:
        raise _Refused(str(body.get("error", status)), body.get("errors"))
    return body


def _offline(args, draft) -> dict:
    from .flowstore import FlowStore, StoreError

    labels = None
    if args.directory:
        try:
            directory, _ = open_directory(args.directory).read()
        except ConfigError as exc:
            raise _Refused(f"--directory {args.directory} has problems", exc.problems) from None
        except (DirectoryUnavailable, DirectoryRefused) as exc:
            raise _Refused(f"--directory {args.directory}: {exc}") from None

        labels = labels_in(directory)

    try:
        edges = FlowStore(args.store, readonly=True).edges(since=args.since, now=time.time())
    except StoreError as exc:  # its message names the file
        raise _Refused(str(exc)) from None
    report = replay(edges, DecisionIndex(draft), None, labels)
    return dict(report.to_json(args.top), since=args.since, mode=draft.mode)


def _service(pair: dict) -> str:
    return f"icmp type {pair['port']}" if pair["proto"] == "icmp" else f"{pair['proto']}/{pair['port']}"


def _count(tally: dict) -> str:
    return f"{tally['flows']:,} flow(s), {tally['pairs']:,} host pair(s)"


def _section(title: str, category: dict, pairs: bool = True) -> list[str]:
    lines = [f"{title}: {_count(category)}"]
    for rule in category["by_rule"]:
        lines.append(f"  {printable(rule['rule'])}: {_count(rule)}")
        if pairs:
            lines += [
                f"    {printable(p['src'])} -> {printable(p['dst'])} {_service(p)}: {p['flows']:,} flow(s)"
                for p in rule["top"]
            ]
    return lines


def render_replay(body: dict, draft: str) -> str:
    """The report as a network engineer reads it: what breaks first, then what opens."""
    replayed, skipped = body["replayed"], body["not_replayed"]
    lines = [
        f"replayed {replayed['flows']:,} flow(s) between {replayed['pairs']:,} host pair(s) recorded in the last "
        f"{body['since']:g} s against {printable(draft)} (mode {body['mode']})",
        f"not replayed: {skipped['flows']:,} flow(s) with a host outside the directory or no service",
        "",
        *_section(
            "newly denied (the draft would break these; filed under the rule that allows them now)",
            body["newly_denied"],
        ),
        *_section("newly allowed (filed under the draft's rule)", body["newly_allowed"]),
        *_section(
            "forwarded only because the destination is monitored (denied once enforced)",
            body["would_deny_once_enforced"],
        ),
        *_section("unchanged", body["unchanged"], pairs=False),
        "",
    ]
    flows = body["newly_denied"]["flows"]
    if flows:
        lines.append(f"the draft would deny {flows:,} flow(s) forwarded now (exit status {BREAKS_EXIT_STATUS})")
    else:
        lines.append("no flow forwarded now would be denied by the draft (exit status 0)")
    return "\n".join(lines)
