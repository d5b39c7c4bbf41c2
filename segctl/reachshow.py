"""`segctl reach`: the blast radius the API answers, as tables per hop or as a Graphviz graph.
Host names and label values are user data: escaped in both (`printable`, DOT quoting)."""

from __future__ import annotations

import time

from .client import table
from .core.textsafe import printable


def _labels(labels: dict) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def _services(entry: dict) -> str:
    listed = [f"{s['rule']} {s['text']}" for s in entry["services"]]
    if entry["monitored"]:
        listed.insert(0, "every service (monitor mode)")
    return "; ".join(listed)


def _seen(entry: dict) -> str | None:
    if entry["seen"] is None:
        return None
    if not entry["seen"]:
        return "never"
    # One line per service: the JSON keeps allowed and monitored flows (and their rules) apart.
    services: dict[tuple, list] = {}
    for s in entry["seen"]:
        total = services.setdefault((s["proto"], s["port"]), [0, s["last_seen"]])
        total[0] += s["flows"]
        total[1] = max(total[1], s["last_seen"])
    return "; ".join(
        proto + ("" if port is None else f"/{port}") + f" {flows}×, last "
        f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(last))}"
        for (proto, port), (flows, last) in services.items()
    )


def reach_text(body: dict) -> str:
    host = printable(body["host"])
    towards = body["direction"] == "to"
    if body["quarantined"]:
        return f"{host} is quarantined: it reaches no host and no host reaches it."
    count = len(body["reached"])
    head = (
        f"{count} host(s) may open connections to {host} ({printable(_labels(body['labels']))}), "
        if towards
        else f"{host} ({printable(_labels(body['labels']))}) may open connections to {count} host(s), "
    )
    lines = [head + f"within {body['hops']} hop(s) (policy reach; ATTACHED: bound to a switch port now)"]
    if not body["flows_recorded"]:
        lines.append("no flows are recorded on this controller: SEEN shows -")
    for hop, hosts in enumerate(body["per_hop"], 1):
        if not hosts:
            continue
        lines.append(f"\nhop {hop}: {hosts} host(s)")
        rows = [
            [e["host"], _labels(e["labels"]), e["via"], _services(e), _seen(e) if body["flows_recorded"] else None]
            + ["yes" if e["attached"] else "no"]
            for e in body["reached"]
            if e["hop"] == hop
        ]
        via = "TO" if towards else "FROM"
        lines.append(table(rows, ["HOST", "LABELS", via, "RULES AND SERVICES", "SEEN", "ATTACHED"]))
    return "\n".join(lines)


def dot_quoted(text: object) -> str:
    """TEXT as a DOT quoted string: control characters made visible, `\\` and `"` escaped, so
    no name or label value can end the string or the statement."""
    return '"' + printable(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _node_label(name: str, labels: dict) -> str:
    # `\n` between the escaped parts is DOT's own line break inside a label.
    return dot_quoted(name)[:-1] + "\\n" + dot_quoted(_labels(labels))[1:]


def reach_dot(body: dict) -> str:
    """The reach graph: HOST in bold, an arrow per connection that may be opened (dashed where
    only monitor mode forwards it, bold where flows were seen), labelled with its rules."""
    lines = ["digraph reach {", "  rankdir=LR;", "  node [shape=box];"]
    lines.append(f"  {dot_quoted(body['host'])} [label={_node_label(body['host'], body['labels'])}, style=bold];")
    for entry in body["reached"]:
        lines.append(f"  {dot_quoted(entry['host'])} [label={_node_label(entry['host'], entry['labels'])}];")
    for entry in body["reached"]:
        ends = (entry["host"], entry["via"]) if body["direction"] == "to" else (entry["via"], entry["host"])
        style = "dashed" if entry["monitored"] and not entry["services"] else ("bold" if entry["seen"] else "solid")
        lines.append(
            f"  {dot_quoted(ends[0])} -> {dot_quoted(ends[1])} [label={dot_quoted(_services(entry))}, style={style}];"
        )
    return "\n".join(lines + ["}"])
