import os

import msgpack
import pytest

from segctl.state import StateError, load_state, save_state, state_path

ENTRY = {"host": "web1", "mac": "02:00:00:00:01:01", "reason": "EDR", "since": 1.5, "by": "soc"}


def test_round_trip_and_empty_start(tmp_path):
    assert load_state(str(tmp_path)) == {"version": 1, "quarantine": [], "link_ends": []}
    save_state(str(tmp_path), {"quarantine": [ENTRY], "link_ends": [[1, 3], [2, 3]]})
    assert load_state(str(tmp_path))["quarantine"] == [ENTRY]
    assert load_state(str(tmp_path))["link_ends"] == [[1, 3], [2, 3]]
    assert os.listdir(tmp_path) == ["state.msgpack"]  # no temp file left behind


def test_a_file_saved_before_link_ends_were_kept_still_loads(tmp_path):
    with open(state_path(str(tmp_path)), "wb") as handle:
        handle.write(msgpack.packb({"version": 1, "quarantine": [ENTRY]}))
    assert load_state(str(tmp_path)) == {"version": 1, "quarantine": [ENTRY], "link_ends": []}


@pytest.mark.parametrize(
    "payload, message",
    [
        (None, "corrupt or truncated"),
        (msgpack.packb({"version": 9, "quarantine": []}), "not a segctl state file"),
        (msgpack.packb({"version": 1, "quarantine": [{"host": 1}]}), "quarantine list is malformed"),
        (msgpack.packb({"version": 1, "quarantine": [], "link_ends": [[1]]}), "list of link ends is malformed"),
        (msgpack.packb({"version": 1, "quarantine": [], "link_ends": [[1, -3]]}), "list of link ends is malformed"),
        (msgpack.packb({"version": 1, "quarantine": [], "link_ends": [[1, True]]}), "list of link ends is malformed"),
        (b"", "corrupt or truncated"),
    ],
)
def test_untrustworthy_files_are_errors(tmp_path, payload, message):
    if payload is None:
        save_state(str(tmp_path), {"quarantine": [ENTRY]})
        with open(state_path(str(tmp_path)), "rb") as handle:
            data = handle.read()
        payload = data[: len(data) // 2]
    with open(state_path(str(tmp_path)), "wb") as handle:
        handle.write(payload)
    with pytest.raises(StateError, match=message):
        load_state(str(tmp_path))
