"""The flow map (GET /v1/map's JSON, segctl.core.flowmap) as `segctl map` prints it: a table, or
Graphviz DOT to render (`segctl map --dot | dot -Tsvg > map.svg`)."""

from __future__ import annotations

from .core.flowmap import utc_text
from .core.textsafe import printable

# Edge colours by the current policy's status: allowed, would be denied once enforced, denied.
_COLOURS = {"allow": "darkgreen", "monitor": "orange", "deny": "red", "mixed": "purple"}


def service_text(edge: dict) -> str:
    if edge["port"] is None:
        return edge["proto"]
    return f"icmp/{edge['port']}" if edge["proto"] == "icmp" else f"{edge['proto']}/{edge['port']}"


def policy_text(policy: dict | None) -> str:
    """`allow`, `deny`, `monitor`, or `mixed (allow 2, deny 1)`: host pairs per outcome."""
    if policy is None:
        return "-"
    if policy["status"] != "mixed":
        return policy["status"]
    counts = ", ".join(f"{kind} {policy[kind]}" for kind in ("allow", "monitor", "deny") if policy[kind])
    return f"mixed ({counts})"


def map_table(body: dict) -> str:
    from .client import table

    labels = {node["id"]: node["label"] for node in body["nodes"]}
    rows = [
        [
            labels[edge["src"]],
            labels[edge["dst"]],
            service_text(edge),
            edge["flows"],
            edge["pairs"],
            utc_text(edge["first_seen"]),
            utc_text(edge["last_seen"]),
            " ".join(f"{verdict} {count}" for verdict, count in edge["observed"].items() if count),
            policy_text(edge["policy"]),
        ]
        for edge in body["edges"]
    ]
    header = ["FROM", "TO", "SERVICE", "FLOWS", "PAIRS", "FIRST SEEN", "LAST SEEN", "OBSERVED", "POLICY NOW"]
    return table(rows, header) + f"\n{len(body['nodes'])} node(s), {len(body['edges'])} edge(s)"


def dot_string(*lines: str) -> str:
    """LINES as one DOT quoted string that renders as written, a line each: control characters
    shown as escapes (a newline in a value cannot end the string or start a statement),
    backslashes doubled (Graphviz reads `\\n`, `\\N`, `\\G` in a label as commands), quotes escaped."""
    escaped = (printable(line).replace("\\", "\\\\").replace('"', '\\"') for line in lines)
    return '"' + "\\n".join(escaped) + '"'


def map_dot(body: dict) -> str:
    lines = ["digraph segctl_map {", "  rankdir=LR;", "  node [shape=box];"]
    for node in body["nodes"]:
        second = f"{len(node['hosts'])} host(s)" if node["known"] else "not in the directory"
        style = "" if node["known"] else ", style=dashed"
        lines.append(f"  {dot_string(node['id'])} [label={dot_string(node['label'], second)}{style}];")
    for edge in body["edges"]:
        label = dot_string(
            service_text(edge), f"{edge['flows']} flow(s), {edge['pairs']} pair(s)", policy_text(edge["policy"])
        )
        status = (edge["policy"] or {}).get("status")
        colour = f", color={_COLOURS[status]}" if status in _COLOURS else ""
        lines.append(f"  {dot_string(edge['src'])} -> {dot_string(edge['dst'])} [label={label}{colour}];")
    lines.append("}")
    return "\n".join(lines)
