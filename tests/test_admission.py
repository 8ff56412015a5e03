"""Credit admission (agent/admission.py): the rule that decides once which frames the whole fleet computes."""

from __future__ import annotations

import threading
import time

import pytest

from vitfleet.agent.admission import CreditGate


def test_a_paced_camera_skips_frames_while_every_credit_is_taken():
    gate: CreditGate[str] = CreditGate(credits=2, timeout=60)
    assert gate.try_admit(1, "a") and gate.try_admit(2, "b")
    assert not gate.try_admit(3, "c") and not gate.try_admit(4, "d")
    assert gate.answer(1) == "a"
    assert gate.try_admit(5, "e") and not gate.try_admit(6, "f")
    c = gate.counts
    assert (c.offered, c.admitted, c.skipped, c.answered, c.lost, c.answered_late) == (6, 3, 3, 1, 0, 0)
    assert gate.in_flight == 2 and gate.answer(3) is None  # a skipped frame has no credit to return


def test_an_unpaced_source_waits_for_the_answer_that_frees_a_credit():
    gate: CreditGate[int] = CreditGate(credits=1, timeout=60)
    stop = threading.Event()
    assert gate.wait_admit(1, 1, stop)
    admitted = threading.Event()
    waiter = threading.Thread(target=lambda: gate.wait_admit(2, 2, stop) and admitted.set())
    waiter.start()
    time.sleep(0.2)
    assert not admitted.is_set()  # blocked: frame 1 is still out
    assert gate.answer(1) == 1
    waiter.join(2)
    assert admitted.is_set() and gate.counts.skipped == 0 and gate.counts.admitted == 2


def test_wait_admit_returns_false_when_stopped():
    gate: CreditGate[int] = CreditGate(credits=1, timeout=60)
    stop = threading.Event()
    gate.try_admit(1, 1)
    threading.Timer(0.1, lambda: (stop.set(), gate.wake())).start()
    assert gate.wait_admit(2, 2, stop) is False and gate.counts.admitted == 1


def test_an_unanswered_credit_is_reclaimed_and_stays_lost_when_its_answer_comes_late():
    gate: CreditGate[str] = CreditGate(credits=1, timeout=0.1)
    assert gate.try_admit(1, "one")
    assert not gate.try_admit(2, "two")  # within the timeout: skipped
    time.sleep(0.15)
    assert gate.try_admit(3, "three")  # frame 1's credit reclaimed: lost
    assert gate.counts.lost == 1 and gate.counts.answered_late == 0
    assert gate.answer(1) == "one"  # its answer still comes: counted, and the frame stays lost
    c = gate.counts
    assert (c.lost, c.answered_late, c.answered) == (1, 1, 1)
    assert gate.answer(1) is None  # a second copy of that answer is not counted again
    assert gate.in_flight == 1  # frame 3 holds the credit: the late answer did not free it


def test_frames_still_out_at_the_end_are_given_up_as_lost_and_the_counts_add_up():
    gate: CreditGate[str] = CreditGate(credits=2, timeout=60)
    assert gate.try_admit(1, "a") and gate.try_admit(2, "b")
    assert gate.answer(1) == "a"
    assert gate.give_up() == 1 and gate.in_flight == 0
    assert gate.answer(2) == "b"  # answered after the run gave up on it: late, still lost
    c = gate.counts
    assert (c.admitted, c.answered, c.lost, c.answered_late) == (2, 2, 1, 1)
    assert c.admitted == c.answered + c.lost - c.answered_late


def test_credits_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        CreditGate(credits=0)
