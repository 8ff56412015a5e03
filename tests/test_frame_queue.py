"""The agent's waiting frames (agent/frame_queue.py)."""

from __future__ import annotations

import pytest

from vitfleet.agent.frame_queue import FrameQueue


def test_two_frames_arriving_back_to_back_are_both_kept_in_order():
    q: FrameQueue[int] = FrameQueue(capacity=2)
    assert not q.put(1) and not q.put(2)  # the first two frames of a run arrive before any take
    assert q.take(0.01) == 1 and q.take(0.01) == 2 and q.take(0.01) is None
    assert q.drops == 0 and q.puts == 2


def test_a_backlog_beyond_the_credits_drops_the_oldest():
    q: FrameQueue[int] = FrameQueue(capacity=2)
    for i in range(5):
        q.put(i)
    assert q.drops == 3 and q.take(0.01) == 3 and q.take(0.01) == 4


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        FrameQueue(capacity=0)
