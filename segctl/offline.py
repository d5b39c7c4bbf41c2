"""`segctl map|suggest --store PATH`: the API's answer computed here, from the flow store file,
for a machine that has the recorded flows but no running controller to ask."""

from __future__ import annotations

import time

from .config import open_directory
from .core.decision import DecisionIndex
from .core.durations import parse_duration
from .core.errors import ConfigError, DirectoryRefused, DirectoryUnavailable
from .core.flowlog import labels_in
from .core.flowmap import build_map, parse_by
from .core.policy import load_policy
from .core.suggest import SuggestOptions, parse_selector, suggest


def options_of(args) -> SuggestOptions:
    """The suggestion's options from `segctl suggest`'s arguments (already checked by argparse)."""
    return SuggestOptions(
        by=parse_by(args.by),
        min_flows=args.min_flows,
        exclude=tuple(parse_selector(text) for text in args.exclude),
        merge_gap=args.merge_gap,
        max_ports=args.max_ports,
        since=args.since,
    )


def offline_answer(args) -> tuple[int, dict]:
    """(200, the answer the API would give) or (400, {"error", "errors"}) saying what failed."""
    if args.api:
        return 400, {"error": "give --api or --store, not both"}
    from .flowstore import FlowStore, StoreError

    try:
        labels_now = None
        if args.directory:
            labels_now = labels_in(open_directory(args.directory).read()[0])
        index = DecisionIndex(load_policy(args.policy)) if getattr(args, "policy", None) else None
        since = parse_duration(args.since) if args.since else None
        store = FlowStore(args.store, readonly=True)
        edges = store.edges(since=since, now=time.time())
    except ConfigError as exc:
        return 400, {"error": "cannot read the files given", "errors": [str(p) for p in exc.problems]}
    except (DirectoryRefused, DirectoryUnavailable) as exc:
        return 400, {"error": f"{args.directory}: {exc}"}
    except StoreError as exc:  # its message names the file
        return 400, {"error": str(exc)}
    if args.command == "map":
        return 200, build_map(edges, parse_by(args.by), index, labels_now, args.verdict).to_json()
    return 200, suggest(edges, options_of(args), labels_now).to_json()
