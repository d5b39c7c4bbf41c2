"""What a restart remembers besides quarantines: the ports that were ends of links."""

import os
import shutil

from segctl.config import Sources
from segctl.core.events import EventLog
from segctl.runtime import Runtime
from segctl.state import load_state, state_path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def runtime(tmp_path) -> Runtime:
    directory, policy = tmp_path / "directory.yaml", tmp_path / "policy.yaml"
    if not directory.exists():
        shutil.copy(f"{ROOT}/policies/directory.yaml", directory)
        shutil.copy(f"{ROOT}/policies/policy.yaml", policy)
    return Runtime(Sources(str(directory), str(policy)), EventLog(), str(tmp_path / "state"))


def test_link_ends_are_saved_when_they_change_and_the_next_run_remembers_them(tmp_path):
    state = str(tmp_path / "state")
    first = runtime(tmp_path)
    first.save_if_links_changed()
    assert load_state(state)["link_ends"] == []
    core = first.controller
    for dpid in (1, 2):
        core.switch_up(dpid, [1, 2, 3], 100.0)
    core.link_up(1, 3, 2, 3, 100.0)
    first.save_if_links_changed()
    assert load_state(state)["link_ends"] == [[1, 3], [2, 3]]
    written = os.stat(state_path(state)).st_mtime_ns
    os.utime(state_path(state), ns=(written - 10**9, written - 10**9))
    first.save_if_links_changed()  # nothing changed: nothing written
    assert os.stat(state_path(state)).st_mtime_ns == written - 10**9
    core.port_changed(1, 3, False, 101.0)  # unplugged: neither end is a link's any more
    first.save_if_links_changed()
    assert load_state(state)["link_ends"] == [[2, 3]]  # (its far end: its neighbour may be away)

    second = runtime(tmp_path)
    assert second.controller.ledger.former_link_ports == {(2, 3)}
    assert load_state(state)["link_ends"] == [[2, 3]]


def test_a_full_disk_does_not_stop_the_controller_when_link_ends_change(tmp_path, monkeypatch):
    """The link ends are a hint for the next start; failing to write them (a full disk, say)
    must not raise out of save_if_links_changed, which runs in the discovery loop (fail_fast:
    os._exit(70)). On the code before, a full state folder stopped `segctl run` 0.1 s after every
    start (the first tick always saves) while the commit before ran on: checked with
    `segctl run --state-dir` on a full 256 KiB tmpfs (exit 70 against running on). Once the disk
    has room again, the ends are saved."""
    import errno

    import segctl.runtime

    state = str(tmp_path / "state")
    first = runtime(tmp_path)
    real = segctl.runtime.save_state

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(segctl.runtime, "save_state", full)
    core = first.controller
    for dpid in (1, 2):
        core.switch_up(dpid, [1, 2, 3], 100.0)
    core.link_up(1, 3, 2, 3, 100.0)
    first.save_if_links_changed()  # must not raise
    monkeypatch.setattr(segctl.runtime, "save_state", real)
    first._retry_save_at = 0.0  # (no wait for the test)
    first.save_if_links_changed()
    assert load_state(state)["link_ends"] == [[1, 3], [2, 3]]
