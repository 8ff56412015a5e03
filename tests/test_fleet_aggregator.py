"""The aggregator and the agent in-process, on a real broker with the real tiny int8 engines:
bounded pending frames, late and duplicate parts, the deadline policy, the durable log, the agent's own camera."""

from __future__ import annotations

import sqlite3
import threading
import time

import numpy as np
import pytest
from engines_fixtures import tiny_bundle, tiny_engines  # noqa: F401
from mqtt_fixtures import wait_until

from vitfleet.agent.aggregator import Aggregator, AggregatorOptions
from vitfleet.agent.board_agent import BoardAgent
from vitfleet.agent.camera_loop import CameraFeed
from vitfleet.agent.deadline import DeadlinePolicy
from vitfleet.agent.mqtt_client import MqttLink
from vitfleet.agent.prediction_log import PredictionLog, read_predictions
from vitfleet.agent.protocol import FeatureMessage, decode_features, encode_features
from vitfleet.camera.sources import open_source
from vitfleet.engines.runtime.backends import load_fusion_engine, load_part_engine
from vitfleet.engines.runtime.manifest import read_manifest
from vitfleet.prediction_message import Prediction
from vitfleet.topics import Topics

pytestmark = pytest.mark.timeout(60, func_only=True)


@pytest.fixture
def make_aggregator(broker, tiny_engines, tmp_path):  # noqa: F811
    made = []

    def make(deadline_ms: float) -> Aggregator:
        manifest = read_manifest(tiny_engines)
        agg = Aggregator(
            broker.config,
            "t",
            "agg",
            load_fusion_engine(tiny_engines),
            manifest.feature_dims,
            manifest.class_names,
            AggregatorOptions(
                PredictionLog(tmp_path / "log.sqlite"),
                DeadlinePolicy(fixed_ms=deadline_ms),
                max_pending=16,
                stats_interval=0.5,
            ),
        ).start()
        made.append(agg)
        return agg

    yield make
    for agg in made:
        agg.stop()


def _features(frame_id: int, part: int, dim: int = 32) -> bytes:
    vec = np.full(dim, 0.1 * (part + 1), np.float32)
    now = time.time_ns()
    return encode_features(FeatureMessage(frame_id, now, part, vec, now, now, 100, frame_id % 10))


def test_pending_frames_are_bounded_and_late_parts_counted(make_aggregator, broker):
    aggregator = make_aggregator(deadline_ms=30_000)  # nothing expires during the test: only the bound fuses
    topics = Topics("t")
    pub = MqttLink(broker.config, "t", "test", "pub", lambda t, p: None).start()
    try:
        for info in [pub.publish(topics.features(0), _features(i, 0), qos=1) for i in range(100)]:
            info.wait_for_publish(5)
        # 100 half frames, at most 16 pending: the 84 oldest were fused early, flagged degraded.
        assert wait_until(lambda: aggregator.counts["predictions"] == 84)
        assert aggregator.counts["evicted"] == 84 and aggregator.counts["degraded"] == 84
        assert sorted(aggregator.pending) == [(0, i) for i in range(84, 100)]  # (camera, frame id)
        # The other halves arrive: 84 are late (dropped, counted), 16 complete their frames.
        for info in [pub.publish(topics.features(1), _features(i, 1), qos=1) for i in range(100)]:
            info.wait_for_publish(5)
        assert wait_until(lambda: aggregator.counts["predictions"] == 100)
        assert aggregator.counts["late"] == 84 and aggregator.counts["degraded"] == 84 and not aggregator.pending
        # A repeated part is a duplicate, not a second prediction.
        for part in (0, 0, 1):
            pub.publish(topics.features(part), _features(1000, part), qos=1).wait_for_publish(5)
        assert wait_until(lambda: aggregator.counts["predictions"] == 101)
        assert aggregator.counts["duplicate"] == 1
    finally:
        pub.stop()
    aggregator.stop()  # flushes the log
    rows = read_predictions(aggregator.log.path)
    assert len(rows) == 101 and rows[-1]["frame_id"] == 1000 and not rows[-1]["degraded"]
    assert rows[0]["missing_parts"] == [1] and rows[0]["label"] == 0
    assert [p["part"] for p in rows[-1]["parts"]] == [0, 1]
    conn = sqlite3.connect(aggregator.log.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_missing_part_is_fused_at_the_deadline(make_aggregator, broker):
    make_aggregator(deadline_ms=150)
    topics = Topics("t")
    got = []
    sub = MqttLink(
        broker.config, "t", "test", "sub", lambda t, p: got.append(time.monotonic()), [(topics.all_predictions, 1)]
    ).start()
    pub = MqttLink(broker.config, "t", "test", "pub", lambda t, p: None).start()
    try:
        time.sleep(0.2)
        sent = time.monotonic()
        pub.publish(topics.features(0), _features(5, 0))
        assert wait_until(lambda: got)
        waited = got[0] - sent
        assert 0.14 < waited < 0.6  # the 150 ms deadline, not sooner, not much later
    finally:
        pub.stop()
        sub.stop()


def test_measured_deadline_follows_the_part_spread():
    policy = DeadlinePolicy()
    assert policy.deadline_ms == 500.0 and policy.source == "initial"
    for _ in range(30):
        policy.observe_complete(140.0)
    assert policy.deadline_ms == pytest.approx(290.0) and policy.source == "measured"
    for _ in range(500):
        policy.observe_complete(1.0)
    assert policy.deadline_ms == 200.0  # floor
    assert DeadlinePolicy(fixed_ms=7).deadline_ms == 7 and DeadlinePolicy(fixed_ms=7).source == "configured"


def _prediction_for(frame_id: int) -> str:
    return Prediction(
        frame_id=frame_id,
        camera="cam0",
        capture_ns=0,
        class_id=0,
        class_name="x",
        score=1.0,
        label=None,
        degraded=False,
        missing_parts=[],
        parts=[],
        wait_ms=0.0,
        fusion_ms=0.0,
        fused_ns=0,
    ).model_dump_json()


def test_agent_with_its_own_camera_shares_frames_and_publishes_features(broker, tiny_engines):  # noqa: F811
    """The agent admits its own camera's frames with credits that predictions return: this subscriber plays the
    aggregator and answers each feature message, so all ten frames are admitted (the camera is slower than the
    agent and the answers, so none is skipped)."""
    manifest = read_manifest(tiny_engines)
    topics = Topics("t")
    frames, features = [], []
    done = threading.Event()

    def on_message(topic, payload):
        if topic == topics.frames:
            frames.append(payload)
        else:
            features.append(decode_features(payload, expected_dim=manifest.feature_dims[0]))
            sub.publish(topics.predictions("cam0"), _prediction_for(features[-1].frame_id), qos=1)
            if len(features) >= 10:
                done.set()

    sub = MqttLink(
        broker.config, "t", "test", "sub", on_message, [(topics.frames, 0), (topics.all_features, 0)]
    ).start()
    agent = BoardAgent(
        broker.config,
        "t",
        "b0",
        0,
        load_part_engine(tiny_engines, 0),
        manifest.preprocessing,
        camera=CameraFeed("cam0", open_source("dataset://fashion-mnist/test?limit=10"), 50),
    ).start()
    try:
        assert done.wait(10)
    finally:
        agent.stop()
        sub.stop()
    assert len(frames) == 10 and len(features) == 10
    ids = [f.frame_id for f in features]
    assert ids == sorted(ids) and ids[-1] - ids[0] == 9
    assert [f.label for f in features] == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]  # the first ten test labels
    expected = load_part_engine(tiny_engines, 0).infer(
        manifest.preprocessing.normalize(open_source("dataset://fashion-mnist/test?limit=1").read().image)
    )
    assert np.allclose(features[0].features, expected[0], atol=1e-2)
    assert agent.stats().frames == 10 and agent.stats().malformed == 0
    assert agent.gate.counts.admitted == 10 and agent.gate.counts.answered == 10 and agent.gate.counts.skipped == 0


def test_agent_camera_faster_than_the_answers_skips_instead_of_queueing(broker, tiny_engines):  # noqa: F811
    """Nobody answers: two frames hold the two credits, every later frame is skipped, never published (the newest
    waits for a credit until the agent stops: it was never offered to the fleet)."""
    manifest = read_manifest(tiny_engines)
    topics = Topics("t")
    frames = []
    sub = MqttLink(broker.config, "t", "test", "sub", lambda t, p: frames.append(p), [(topics.frames, 0)]).start()
    agent = BoardAgent(
        broker.config,
        "t",
        "b0",
        0,
        load_part_engine(tiny_engines, 0),
        manifest.preprocessing,
        camera=CameraFeed("cam0", open_source("dataset://fashion-mnist/test?limit=30"), 200),
    ).start()
    try:
        deadline = time.monotonic() + 10
        while agent.gate.counts.offered < 29 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        agent.stop()
        sub.stop()
    counts = agent.gate.counts
    assert counts.offered == 29 and counts.admitted == 2 and counts.skipped == 27
    assert len(frames) == 2 and agent.stats().frames == 2
