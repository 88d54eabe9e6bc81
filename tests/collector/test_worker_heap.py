"""The commit worker's long-lived objects are frozen out of the garbage collector's passes."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from gronkoll.collector.mqtt_worker import LongLived


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # leave the test process as it was


def test_the_heap_is_frozen_at_start_and_again_only_when_the_engine_state_grew(
    unfrozen: None,
) -> None:
    heap = LongLived()
    heap.settle(0)  # start-up: frozen whatever the count
    assert gc.get_freeze_count() > 0 and heap.frozen_at == 0
    gc.unfreeze()
    heap.settle(90)  # not a tenth plus 100 more: left alone
    assert gc.get_freeze_count() == 0 and heap.frozen_at == 0
    heap.settle(5_000)  # a fleet heard from for the first time
    assert gc.get_freeze_count() > 0 and heap.frozen_at == 5_000
    gc.unfreeze()
    heap.settle(5_400)
    assert gc.get_freeze_count() == 0
    heap.settle(5_700)
    assert heap.frozen_at == 5_700


def test_garbage_is_collected_before_a_freeze(unfrozen: None) -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a reference cycle: only the cyclic collector frees it

    gc.disable()
    try:
        node = Node()
        ref = weakref.ref(node)
        del node
        LongLived().settle(0)
        assert ref() is None  # collected, not frozen
    finally:
        gc.enable()
