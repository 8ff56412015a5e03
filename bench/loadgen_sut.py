"""MLPerf LoadGen's system under test: the fleet's camera path, on a fleet that is already running.

LoadGen issues samples (indices into the query sample library, the bundle's test split held in memory); each one
becomes a camera frame, sent by the kit's own camera node (agent/camera_node.py: credit admission, encoding, frame
ids), computed by the real agents and fused by the real aggregator. The sample is complete when the fleet's
prediction for that frame reaches this process; its response data is the predicted class (int32), so LoadGen's
accuracy log can be scored against the labels.

    with FleetSUT(broker, fleet_name, images, labels, max_in_flight=2) as sut:
        lg.StartTestWithLogSettings(sut.sut_handle, sut.qsl_handle, settings, log_settings)

Why the camera node and not a publisher of our own: what is measured must be what a camera on the fleet gets —
the same admission credits (an Offline query of thousands of samples enters the fleet `max_in_flight` at a time,
as a replay with `--fps 0` does, instead of flooding agents that keep only that many frames), the same encoding,
the same frame header. The camera node is used through its public pieces only: a frame source (QueryFeed) and its
credit gate (`node.on_admit` learns which frame id each sample was given). The predictions
are read by a second subscriber here, because the node keeps no per-frame callback.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np
from pydantic import ValidationError

from vitfleet.agent.camera_node import CameraNode
from vitfleet.agent.mqtt_client import MqttLink
from vitfleet.camera.frame_source import Frame, FrameSource
from vitfleet.fleet_config import BrokerConfig
from vitfleet.prediction_message import Prediction
from vitfleet.topics import Topics

log = logging.getLogger("vitfleet.bench.loadgen")
NO_ANSWER = -1  # response data of a sample whose prediction never came (counted `lost`)


@dataclass(frozen=True)
class Issued:
    """One LoadGen sample on its way through the fleet."""

    query_id: int  # LoadGen's QuerySample.id (the response must carry it back)
    index: int  # the QSL index: which test image


class QueryFeed(FrameSource):
    """The camera node's frame source: the samples LoadGen issued, in issue order. read() blocks until one is
    issued; close() ends the camera node's loop (it returns None once the issued samples are read)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels
        self._queue: queue.Queue[Issued | None] = queue.Queue()
        # Samples read but not yet admitted, oldest first: an unpaced one-camera node admits in read order.
        self.read_order: deque[Issued] = deque()

    def put(self, samples: list[Issued]) -> None:
        for s in samples:
            self._queue.put(s)

    def read(self) -> Frame | None:
        item = self._queue.get()
        if item is None:
            self._queue.put(None)  # stay closed for any later read
            return None
        self.read_order.append(item)
        return Frame(self.images[item.index], int(self.labels[item.index]), item.index)

    def close(self) -> None:
        self._queue.put(None)

    def __len__(self) -> int:
        return 0


@dataclass
class SutCounts:
    issued: int = 0
    completed: int = 0
    degraded: int = 0  # answered with a part missing (fused at the aggregator's deadline)
    lost: int = 0  # admitted, never answered within `lost_after_s`: completed with NO_ANSWER
    unmatched: int = 0  # predictions for frames this run did not send (or already given up on)
    malformed: int = 0
    predicted: dict[int, int] = field(default_factory=dict)  # QSL index -> class of its latest answer


class FleetSUT:
    """LoadGen's SUT and QSL over a running fleet (its broker and fleet name)."""

    def __init__(
        self,
        broker: BrokerConfig,
        fleet_name: str,
        images: np.ndarray,
        labels: np.ndarray,
        max_in_flight: int = 2,
        encoding: str = "raw",
        lost_after_s: float = 10.0,
        performance_count: int | None = None,
    ) -> None:
        self.broker, self.fleet_name = broker, fleet_name
        self.images, self.labels = images, labels
        self.performance_count = min(len(images), performance_count or len(images))
        self.lost_after_s = lost_after_s
        self.counts = SutCounts()
        self._lock = threading.Lock()
        self._admitted: dict[int, tuple[Issued, float]] = {}  # frame id -> (sample, admitted at, monotonic)
        self.feed = QueryFeed(images, labels)
        self.node = CameraNode(
            broker,
            fleet_name,
            "loadgen-camera",
            self.feed,
            fps=0.0,
            encoding=encoding,
            max_in_flight=max_in_flight,
            drain=lost_after_s,
        )
        self.node.on_admit = self._on_admit
        self.topics = Topics(fleet_name)
        self.listener = MqttLink(
            broker, fleet_name, "camera", "loadgen", self._on_prediction, [(self.topics.all_predictions, 1)]
        )
        self.camera_summary: dict[str, Any] = {}
        self._camera_thread = threading.Thread(target=self._run_camera, name="loadgen-camera", daemon=True)
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="loadgen-watchdog", daemon=True)
        self.sut_handle: Any = None
        self.qsl_handle: Any = None

    # ---- lifecycle ----------------------------------------------------------------------------------------
    def __enter__(self) -> FleetSUT:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> FleetSUT:
        import mlperf_loadgen as lg

        self.listener.start()  # subscribed before the first frame goes out
        self._camera_thread.start()
        self._watchdog.start()
        self.sut_handle = lg.ConstructSUT(self._issue_queries, self._flush_queries)
        self.qsl_handle = lg.ConstructQSL(len(self.images), self.performance_count, self._load, self._unload)
        return self

    def _run_camera(self) -> None:
        self.camera_summary.update(self.node.run())

    def finish(self) -> dict[str, Any]:
        """End the camera node (after LoadGen's test returned) and return its summary."""
        self.feed.close()
        self._camera_thread.join(self.lost_after_s + 10.0)
        return self.camera_summary

    def close(self) -> None:
        import mlperf_loadgen as lg

        self.feed.close()
        self._stop.set()
        self.listener.stop()
        if self.qsl_handle is not None:
            lg.DestroyQSL(self.qsl_handle)
            self.qsl_handle = None
        if self.sut_handle is not None:
            lg.DestroySUT(self.sut_handle)
            self.sut_handle = None

    # ---- LoadGen callbacks (LoadGen's threads) ------------------------------------------------------------
    def _issue_queries(self, samples: list[Any]) -> None:
        # Only queued here: LoadGen's issue thread must not wait for credits (Offline issues every sample at once).
        issued = [Issued(int(s.id), int(s.index)) for s in samples]
        with self._lock:
            self.counts.issued += len(issued)
        self.feed.put(issued)

    def _flush_queries(self) -> None:
        pass  # nothing is batched: every sample is sent as soon as a credit is free

    def _load(self, indices: list[int]) -> None:
        pass  # the whole split is in memory already (28x28 or 224x224 images: tens of MB at most)

    def _unload(self, indices: list[int]) -> None:
        pass

    # ---- the fleet's side ---------------------------------------------------------------------------------
    def _on_admit(self, frame_id: int, frame: Frame) -> None:
        sample = self.feed.read_order.popleft()
        assert sample.index == frame.index, "the camera node admitted frames out of the order it read them"
        with self._lock:
            self._admitted[frame_id] = (sample, time.monotonic())

    def _on_prediction(self, topic: str, payload: bytes) -> None:
        try:
            pred = Prediction.model_validate(json.loads(payload))  # as the camera node reads it
        except (ValueError, ValidationError):
            with self._lock:
                self.counts.malformed += 1
            return
        with self._lock:
            entry = self._admitted.pop(pred.frame_id, None)
            if entry is None:
                self.counts.unmatched += 1
                return
            self.counts.degraded += int(pred.degraded)
        self._complete(entry[0], pred.class_id)

    def _complete(self, sample: Issued, class_id: int) -> None:
        import mlperf_loadgen as lg

        with self._lock:
            self.counts.completed += 1
            self.counts.predicted[sample.index] = class_id
        # LoadGen copies the bytes during the call (accuracy log): the array only has to outlive it. Called
        # without our lock, in case LoadGen issues the next query from inside.
        response = np.array([class_id], np.int32)
        ptr, _ = response.__array_interface__["data"]
        lg.QuerySamplesComplete([lg.QuerySampleResponse(sample.query_id, ptr, response.nbytes)])

    def _watch(self) -> None:
        """A frame whose prediction never comes (lost with a broker hiccup) would stall LoadGen for ever: complete
        it with NO_ANSWER after `lost_after_s` (from admission: queueing for a credit is not loss) and count it."""
        while not self._stop.wait(0.5):
            now = time.monotonic()
            with self._lock:
                expired = [fid for fid, (_, at) in self._admitted.items() if now - at > self.lost_after_s]
                gone = [self._admitted.pop(fid)[0] for fid in expired]
                self.counts.lost += len(gone)
            for sample in gone:
                log.warning("no prediction for sample %d within %.0f s: counted lost", sample.index, self.lost_after_s)
                self._complete(sample, NO_ANSWER)
