"""The memory buffer: production order across kinds, and which points give way when full."""

from __future__ import annotations

from gateway.timeseries.buffer import KIND_ALARM, KIND_READING, KIND_STATUS, MemoryBuffer


def test_peek_merges_the_kinds_in_production_order_and_leaves_them() -> None:
    buf = MemoryBuffer(10)
    for i, kind in enumerate([KIND_READING, KIND_ALARM, KIND_READING, KIND_STATUS, KIND_ALARM]):
        buf.append(kind, f"line-{i}", at=float(i))
    assert [item[3] for item in buf.peek(4)] == ["line-0", "line-1", "line-2", "line-3"]
    assert len(buf) == 5
    assert buf.oldest_at() == 0.0


def test_full_drops_the_oldest_reading_then_status_never_an_alarm() -> None:
    buf = MemoryBuffer(2)
    assert buf.append(KIND_STATUS, "s", 0.0) is None
    assert buf.append(KIND_READING, "r", 1.0) is None
    assert buf.append(KIND_ALARM, "a1", 2.0) == KIND_READING
    assert buf.append(KIND_ALARM, "a2", 3.0) == KIND_STATUS
    assert buf.append(KIND_ALARM, "a3", 4.0) is None  # alarms only: all kept, past the bound
    assert [item[3] for item in buf.peek(10)] == ["a1", "a2", "a3"]


def test_remove_through_goes_by_sequence_not_count() -> None:
    buf = MemoryBuffer(3)
    for i in range(3):
        buf.append(KIND_READING, f"r{i}", float(i))
    head = buf.peek(2)  # r0, r1 taken for a write ...
    buf.append(KIND_READING, "r3", 3.0)  # ... meanwhile r0 dropped to make room
    buf.remove_through(head[-1][0])
    assert [item[3] for item in buf.peek(10)] == ["r2", "r3"]
    assert len(buf) == 2
