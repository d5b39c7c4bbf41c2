"""The running controller's collector settings (segctl.gcpauses): what lived through a full
collection is not walked by the next one, and a sweep walks everything again."""

from __future__ import annotations

import gc
import weakref

import pytest

from segctl import gcpauses


@pytest.fixture(autouse=True)
def _collector_as_it_was():
    yield
    while gcpauses._freeze_what_lived in gc.callbacks:
        gc.callbacks.remove(gcpauses._freeze_what_lived)
    gc.unfreeze()


class Node:
    def __init__(self):
        self.other = self


def test_what_lives_through_a_full_collection_is_frozen_and_not_walked_again():
    gcpauses.keep_pauses_short()
    gcpauses.keep_pauses_short()  # (once is enough)
    assert gc.callbacks.count(gcpauses._freeze_what_lived) == 1
    frozen = gc.get_freeze_count()
    assert frozen > 0
    alive = [Node() for _ in range(1000)]
    gc.collect(1)  # a young collection freezes nothing
    assert gc.get_freeze_count() == frozen
    gc.collect()
    assert gc.get_freeze_count() >= frozen + len(alive)
    assert alive


def test_young_cyclic_garbage_is_still_collected():
    gcpauses.keep_pauses_short()
    Node()  # unreachable at once: a cycle only the collector frees
    assert gc.collect(0) >= 1


def test_a_sweep_collects_cyclic_garbage_among_frozen_objects():
    gcpauses.keep_pauses_short()
    node = Node()
    gc.collect()  # frozen now
    left = weakref.ref(node)
    del node
    gc.collect()
    assert left() is not None  # frozen: not walked, so not found
    assert gcpauses.sweep() >= 1
    assert left() is None
    assert gc.get_freeze_count() > 0  # what lives on is frozen again


def test_sweeps_come_every_interval():
    slept = []

    class Done(Exception):
        pass

    def sleep(seconds):
        slept.append(seconds)
        if len(slept) == 3:
            raise Done

    with pytest.raises(Done):
        gcpauses.sweep_forever(sleep)
    assert slept == [gcpauses.SWEEP_INTERVAL] * 3
