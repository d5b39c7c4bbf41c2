"""What the core returns: one `Message` type for every effect it asks for.

Switch messages (segctl.core.flows) go to the switch named by their `dpid`; `SaveState` asks
the runtime to write the saved state (quarantines) before anything after it is sent, so a
quarantine the core decided on its own (the scan detector) survives a restart like one an
engineer asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from operator import is_
from typing import Union

from .flows import (
    Barrier,
    EntryDelete,
    FlowAdd,
    FlowDelete,
    FlowStatsRequest,
    MetersClear,
    MeterSet,
    PacketOut,
    SwitchConfig,
)


@dataclass(frozen=True, eq=False)
class SaveState:
    """Persist the controller's saved state now (no switch is involved). There is one:
    SAVE_STATE."""


SAVE_STATE = SaveState()

SwitchMessage = Union[  # noqa: UP007
    FlowAdd, FlowDelete, EntryDelete, MeterSet, MetersClear, PacketOut, SwitchConfig, FlowStatsRequest, Barrier
]
Message = Union[SwitchMessage, SaveState]  # noqa: UP007


def for_switches(messages: list[Message]) -> tuple[list[SwitchMessage], bool]:
    """(the switch messages in order, whether the state must be saved first)."""
    # (The common case, a packet-in's answer, is looked through in C and not copied.)
    if not any(map(is_, messages, repeat(SAVE_STATE))):
        return messages, False  # type: ignore[return-value]
    return [m for m in messages if not isinstance(m, SaveState)], True
