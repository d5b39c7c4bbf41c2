"""FlowEdges as the flow store hands them over, for the tests of what reads them."""

from __future__ import annotations

from collections.abc import Mapping

from segctl.core.flowlog import ALLOWED, FlowEdge


def flow_edge(
    src: str,
    dst: str,
    port: int | None,
    proto: str = "tcp",
    verdict: str = ALLOWED,
    flows: int = 1,
    src_labels: Mapping[str, str] | None = None,
    dst_labels: Mapping[str, str] | None = None,
    first: float = 86400.0,
    last: float = 86400.0,
) -> FlowEdge:
    """An edge; a side without labels is a host not in the directory (known by its MAC)."""
    return FlowEdge(
        src,
        src_labels is not None,
        dst,
        dst_labels is not None,
        proto,
        port,
        verdict,
        None,
        flows,
        first,
        last,
        src_labels,
        dst_labels,
    )
