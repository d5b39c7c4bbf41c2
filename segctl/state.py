"""What must survive a restart (the quarantine list, and the ports that were ends of links),
written atomically with msgpack.

The file is replaced with write-to-temp, fsync, rename, fsync-the-folder, so a crash leaves
either the old state or the new one, never half of either. A file that cannot be read is an
error the operator must act on: starting without it would silently release quarantined hosts.
"""

from __future__ import annotations

import os
import tempfile

import msgpack

STATE_FILE = "state.msgpack"
FORMAT_VERSION = 1


class StateError(Exception):
    """The state file exists but cannot be trusted."""


def state_path(state_dir: str) -> str:
    return os.path.join(state_dir, STATE_FILE)


def load_state(state_dir: str) -> dict:
    """The saved state, or an empty one when none was ever saved."""
    path = state_path(state_dir)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return {"version": FORMAT_VERSION, "quarantine": [], "link_ends": []}
    except OSError as exc:
        raise StateError(f"{path}: cannot read: {exc}") from None
    try:
        data = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except Exception as exc:  # noqa: BLE001 - msgpack raises many types for bad input
        raise StateError(f"{path}: corrupt or truncated ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise StateError(f"{path}: not a segctl state file of version {FORMAT_VERSION}")
    entries = data.get("quarantine")
    if not isinstance(entries, list) or not all(_valid_entry(e) for e in entries):
        raise StateError(f"{path}: the quarantine list is malformed")
    ends = data.setdefault("link_ends", [])  # (a file of a version before link ends were kept has none)
    if not isinstance(ends, list) or not all(_valid_end(e) for e in ends):
        raise StateError(f"{path}: the list of link ends is malformed")
    return data


def _valid_end(end) -> bool:
    """[dpid, port]"""
    return isinstance(end, list) and len(end) == 2 and all(type(n) is int and n >= 0 for n in end)


def _valid_entry(entry) -> bool:
    return (
        isinstance(entry, dict)
        and all(isinstance(entry.get(k), str) for k in ("host", "mac", "reason", "by"))
        and isinstance(entry.get("since"), (int, float))
    )


def save_state(state_dir: str, data: dict) -> None:
    """Replace the state file atomically and durably."""
    os.makedirs(state_dir, exist_ok=True)
    payload = msgpack.packb(dict(data, version=FORMAT_VERSION), use_bin_type=True)
    fd, temp = tempfile.mkstemp(prefix=".state-", dir=state_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, state_path(state_dir))
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    folder = os.open(state_dir, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
