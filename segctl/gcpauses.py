"""Short garbage-collector pauses for the running controller (`segctl run`).

Python's cyclic collector walks every object it tracks at each full collection, and runs one
whenever a quarter more objects than at the last one have lived long enough: the connection
table, the audit's view of each switch's table and the event ring are hundreds of thousands of
objects, and walking them stopped the controller for 70-150 ms at a time (seven times in a
20-second benchmark), packet-ins waiting. segctl makes almost no cyclic garbage (0 to 30
objects found per full collection there), so:

- what startup built (framework, directory, policy, indexes) is frozen (gc.freeze): never walked;
- at the end of each full collection, what lived through it is frozen too, so the next walks
  only what came since: the pause follows how much has changed, not how much is alive;
- young collections run as before (most cyclic garbage is young, and goes there);
- every SWEEP_INTERVAL seconds everything is walked once (sweep), for the rare cyclic garbage
  among frozen objects (objects frozen and then freed by reference counting need no sweep).
"""

from __future__ import annotations

import gc
from collections.abc import Callable

SWEEP_INTERVAL = 600.0  # seconds between two walks of everything


def _freeze_what_lived(phase: str, info: dict) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


def keep_pauses_short() -> None:
    """Once startup has built what it builds: collect, freeze, and freeze after every full
    collection from now on."""
    if _freeze_what_lived not in gc.callbacks:
        gc.callbacks.append(_freeze_what_lived)
    gc.collect()  # (frozen at its end)


def sweep() -> int:
    """Walk everything once: the frozen objects thawed, a full collection (which freezes what
    lives on). Returns how many unreachable objects it found."""
    gc.unfreeze()
    return gc.collect()


def sweep_forever(sleep: Callable[[float], None]) -> None:
    while True:
        sleep(SWEEP_INTERVAL)
        sweep()
