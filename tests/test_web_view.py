"""The web view in a real browser: headless Chromium (Debian's chromium + chromium-driver, driven by selenium)
against a real fleet (mosquitto, aggregator + 2 agents as processes, int8 ONNX Runtime engines, a camera node).

One fleet and one browser for the module (the tests run in file order: the last one kills an agent):
- the page shows a prediction and every board within 5 s; frames are taken only while the stream is watched;
- /metrics parses as Prometheus text and its counters rise; /api/state is the typed JSON;
- the aggregator (homeassistant: true) publishes the discovery configs;
- a broker restart shows the banner, then the page recovers;
- SIGKILL on an agent turns its tile offline and the predictions degraded;
- bad --http values, a busy port and a non-loopback bind without credentials are one line, exit 2;
- bound beyond loopback, the page asks for the fleet's MQTT credentials.

A second fleet with three cameras (its own broker; the camera node as a `vitfleet camera` process reading the
fleet file's cameras): one tile per camera with its own stream, answer and counts; /api/state and /metrics per
camera; an unknown camera's stream is a one-line 404; a flood of camera names stays bounded and counted.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet_harness import Fleet, fleet_engines, tiny_bundle, tiny_engines  # noqa: F401
from mqtt_fixtures import wait_until
from prometheus_client.parser import text_string_to_metric_families

from vitfleet.agent.web.server import WebView, open_view
from vitfleet.agent.web.state import MAX_CAMERAS, ViewState
from vitfleet.fleet.local_broker import LocalBroker
from vitfleet.fleet_config import BrokerConfig, CameraFeedConfig
from vitfleet.prediction_message import Prediction

pytestmark = pytest.mark.timeout(120, func_only=True)  # fixtures (bundle training) are not ours to bound

CHROMEDRIVER = Path("/usr/bin/chromedriver")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _no_browser_reason() -> str | None:
    if _chromium() is None or not CHROMEDRIVER.exists():
        return (
            "Debian's chromium and chromium-driver are not installed (make setup installs them; or: "
            "apt-get install -y chromium chromium-driver)"
        )
    return None


needs_browser = pytest.mark.skipif(_no_browser_reason() is not None, reason=_no_browser_reason() or "")


def _get(url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _state(web: WebView) -> ViewState:
    code, body = _get(web.url + "api/state")
    assert code == 200
    return ViewState.model_validate_json(body)


@pytest.fixture(scope="module")
def live(fleet_engines: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:  # noqa: F811
    work = tmp_path_factory.mktemp("web")
    broker = LocalBroker(work_dir=work / "broker").start()
    # homeassistant: the aggregator publishes the discovery configs too
    fleet = Fleet(broker, fleet_engines, work, deadline_ms=300, tweak=lambda c: setattr(c, "homeassistant", True))
    fleet.start()
    web = open_view(broker.config, fleet.config.name, "127.0.0.1:0", [b.name for b in fleet.config.boards]).start()
    node, thread = fleet.run_camera_in_background("dataset://fashion-mnist/test", fps=20, max_in_flight=2)
    try:
        yield {"broker": broker, "fleet": fleet, "web": web, "camera": node}
    finally:
        node.stop()
        thread.join(timeout=10)
        web.stop()
        fleet.stop()
        broker.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _no_browser_reason()
    if reason is not None:
        if os.environ.get("CI"):  # `make setup` installs Chromium: in CI a missing browser is a failure
            pytest.fail(f"{reason}; `make setup` should have installed chromium and chromium-driver")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Offline: the driver path is given, so Selenium Manager has nothing to look up or download.
    os.environ["SE_OFFLINE"] = "true"
    opts = webdriver.ChromeOptions()
    opts.binary_location = _chromium() or ""
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--no-first-run",
        "--disable-extensions",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _tile_status(driver: Any, board: str) -> str | None:
    """The board tile's status; None while the page has none, or replaced it between finding and reading it (the
    page redraws its tiles every second)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        tiles = driver.find_elements(By.CSS_SELECTOR, f'.tile[data-board="{board}"]')
        return tiles[0].get_attribute("data-status") if tiles else None
    except StaleElementReferenceException:
        return None


@needs_browser
def test_the_page_shows_a_prediction_and_every_board_within_5_s(live: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    web, fleet = live["web"], live["fleet"]
    assert wait_until(lambda: _state(web).predictions_seen > 0, 20), "no prediction reached the view"
    # Nobody watches the stream yet: the view has not taken a single frame off the broker.
    state = _state(web)
    assert not state.frames_subscribed and state.stream_clients == 0
    started = time.monotonic()
    browser.get(web.url)
    boards = [*fleet.agents, "aggregator", "camera"]
    WebDriverWait(browser, 5).until(
        lambda d: (
            d.find_element(By.ID, "prediction").get_attribute("data-frame")
            and all(_tile_status(d, b) == "online" for b in boards)
        )
    )
    assert time.monotonic() - started < 5.0
    pred_class = browser.find_element(By.ID, "pred-class").text
    assert pred_class in fleet.manifest.class_names
    # The stream is open and the frame arrives drawn with the prediction: the view now subscribes to frames.
    WebDriverWait(browser, 5).until(
        lambda d: d.execute_script(
            "const i = document.getElementById('stream'); return i.complete && i.naturalWidth > 0;"
        )
    )
    assert wait_until(lambda: _state(web).frames_subscribed and _state(web).stream_clients == 1, 5)
    tile_text = browser.find_element(By.CSS_SELECTOR, '.tile[data-board="agent0"]').text
    assert "infer p50/p99" in tile_text and "estimated" in tile_text  # no power meter here: flagged as such
    assert browser.find_elements(By.CSS_SELECTOR, "#log tbody tr")
    # Leaving the page closes the stream, and the view lets go of the frames again.
    browser.get("about:blank")
    assert wait_until(lambda: not _state(web).frames_subscribed, 5)


def test_metrics_parse_as_prometheus_text_and_counters_rise(live: dict[str, Any]) -> None:
    web = live["web"]

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        code, body = _get(web.url + "metrics")
        assert code == 200
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body.decode())
            for s in fam.samples
        }

    # The module's fleet may have just started (this test can run first): wait for the first prediction and
    # every agent's and the camera's first stats.
    def started() -> bool:
        now = scrape()
        return (
            now.get(("vitfleet_predictions_total", ()), 0.0) > 0
            and ("vitfleet_camera_skipped_total", (("board", "camera"),)) in now
            and all(
                now.get(("vitfleet_board_frames_total", (("board", a), ("part", a[-1]))), 0.0) > 0
                for a in live["fleet"].agents
            )
        )

    assert wait_until(started, 15)
    first = scrape()
    time.sleep(1.5)  # the harness' boards report every 0.5 s, the camera sends 20 frames a second
    second = scrape()
    assert second[("vitfleet_predictions_total", ())] > first[("vitfleet_predictions_total", ())] > 0
    for agent in live["fleet"].agents:
        key = ("vitfleet_board_frames_total", (("board", agent), ("part", agent[-1])))
        assert second[key] > first[key] > 0
        assert second[("vitfleet_board_up", (("board", agent),))] == 1.0
        assert second[("vitfleet_board_resident_memory_bytes", (("board", agent),))] > 1e6
        watts = [v for (n, labels), v in second.items() if n == "vitfleet_board_watts" and ("board", agent) in labels]
        assert watts and watts[0] > 0
        assert second[("vitfleet_board_energy_joules_total", (("board", agent),))] > 0
    assert (
        second[("vitfleet_end_to_end_latency_seconds_count", ())]
        > first[("vitfleet_end_to_end_latency_seconds_count", ())]
    )
    assert second[("vitfleet_inference_latency_seconds_count", (("part", "0"),))] > 0
    assert second[("vitfleet_fleet_predictions_total", (("board", "aggregator"),))] > 0
    assert ("vitfleet_camera_skipped_total", (("board", "camera"),)) in second
    assert second[("vitfleet_view_broker_connected", ())] == 1.0


def test_api_state_is_the_typed_json(live: dict[str, Any]) -> None:
    code, body = _get(live["web"].url + "api/state")
    assert code == 200
    data = json.loads(body)
    state = ViewState.model_validate(data)
    assert state.broker_connected and state.prediction is not None and state.log
    assert {b.name for b in state.boards} >= {*live["fleet"].agents, "aggregator", "camera"}
    assert state.chart and any(p.fps > 0 for p in state.chart)
    assert state.summary.predictions and state.summary.fleet_watts


def test_the_aggregator_publishes_home_assistant_discovery(live: dict[str, Any]) -> None:
    from vitfleet.agent.homeassistant import discovery_configs
    from vitfleet.agent.mqtt_client import MqttLink

    fleet = live["fleet"]
    seen: dict[str, bytes] = {}
    link = MqttLink(
        live["broker"].config, "ha-check", "test", "ha", lambda t, p: seen.__setitem__(t, p), [("homeassistant/#", 1)]
    ).start()
    try:
        expected = discovery_configs(fleet.config)
        assert wait_until(lambda: set(seen) == set(expected), 5), sorted(set(expected) - set(seen))
        assert all(json.loads(seen[t])["unique_id"] == e.unique_id for t, e in expected.items())
    finally:
        link.stop()


@needs_browser
def test_a_broker_restart_shows_the_banner_then_the_page_recovers(live: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    web, broker = live["web"], live["broker"]
    browser.get(web.url)
    banner = browser.find_element(By.ID, "banner")
    WebDriverWait(browser, 5).until(
        lambda d: not banner.is_displayed() and d.find_element(By.ID, "prediction").get_attribute("data-frame")
    )
    broker.stop()
    WebDriverWait(browser, 5).until(lambda d: banner.is_displayed())
    assert "broker unreachable" in banner.text
    seen = _state(web).predictions_seen
    broker.start()
    WebDriverWait(browser, 10).until(lambda d: not banner.is_displayed())
    # Predictions flow again (the camera reclaims the credits lost with the broker within a few seconds).
    assert wait_until(lambda: _state(web).predictions_seen > seen + 5, 15)
    WebDriverWait(browser, 5).until(lambda d: all(_tile_status(d, b) == "online" for b in live["fleet"].agents))


@needs_browser
def test_a_killed_agent_turns_offline_and_the_predictions_degraded(live: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    web, fleet = live["web"], live["fleet"]
    browser.get(web.url)
    WebDriverWait(browser, 5).until(lambda d: _tile_status(d, "agent1") == "online")
    fleet.procs.children["agent1"].proc.send_signal(signal.SIGKILL)
    # The broker publishes agent1's last will (retained offline) as soon as its socket dies.
    WebDriverWait(browser, 10).until(
        lambda d: (
            _tile_status(d, "agent1") == "offline"
            and d.find_element(By.ID, "prediction").get_attribute("data-degraded") == "true"
        )
    )
    assert "missing part 1" in browser.find_element(By.ID, "pred-degraded").text
    assert _tile_status(browser, "agent0") == "online"
    state = _state(web)
    assert state.prediction is not None and state.prediction.degraded and state.prediction.missing_parts == [1]


def _vitfleet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vitfleet.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent,
    )  # no .certs/ there: a non-loopback bind has no credentials


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize(
    "http, needle",
    [
        ("0.0.0.0:0", "without a password"),
        ("nonsense", "must be HOST:PORT"),
        ("busy", "already in use"),
    ],
)
def test_bad_http_values_are_one_line_and_exit_2(http: str, needle: str, busy_port: int) -> None:
    value = f"127.0.0.1:{busy_port}" if http == "busy" else http
    run = _vitfleet("view", "--broker", "127.0.0.1:9", "--http", value)
    assert run.returncode == 2, run.stderr
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("error:"), run.stderr
    assert "Traceback" not in run.stderr


def test_beyond_loopback_the_page_asks_for_the_fleets_credentials(tmp_path: Path, broker: LocalBroker) -> None:
    passwd = tmp_path / "mosquitto.passwd"
    passwd.write_text("pi-a:board-secret\n")
    subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True)
    secret = tmp_path / "operator.pw"
    secret.write_text("operator-secret\n")
    cfg = BrokerConfig(host=broker.host, port=broker.port, username="operator", password_file=secret)
    web = open_view(cfg, "demo", "0.0.0.0:0", passwd_file=passwd)
    web.start()  # it connects as the fleet config's user (this test broker takes any user)
    try:
        url = web.url

        def basic(user: str, pw: str) -> dict[str, str]:
            return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}

        assert _get(url)[0] == 401
        assert _get(url + "metrics")[0] == 401
        assert _get(url, basic("pi-a", "wrong"))[0] == 401
        assert _get(url, basic("pi-a", "board-secret"))[0] == 200  # a user of the mosquitto password file
        assert _get(url + "api/state", basic("operator", "operator-secret"))[0] == 200  # the fleet config's user
    finally:
        web.stop()


# ---- several cameras ---------------------------------------------------------------------------------------------
CAMERAS = [("north", 10.0), ("gate", 6.0), ("dock", 3.0)]  # fleet-file order: their indices on the wire


@pytest.fixture(scope="module")
def cams(fleet_engines: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:  # noqa: F811
    """A fleet with three cameras on its own broker (the first fleet's broker restart must not touch it)."""
    work = tmp_path_factory.mktemp("web-cams")
    broker = LocalBroker(work_dir=work / "broker").start()
    feeds = [CameraFeedConfig(name=n, uri="dataset://fashion-mnist/test", fps=fps) for n, fps in CAMERAS]
    fleet = Fleet(broker, fleet_engines, work, deadline_ms=300, tweak=lambda c: setattr(c, "cameras", feeds))
    fleet.start()
    # No camera names given: the view learns them from the fleet's messages, as `vitfleet view --broker` must.
    web = open_view(broker.config, fleet.config.name, "127.0.0.1:0", [b.name for b in fleet.config.boards]).start()
    fleet.spawn_camera(work / "camera.json", ["--max-in-flight", "2"])
    try:
        yield {"broker": broker, "fleet": fleet, "web": web}
    finally:
        web.stop()
        fleet.stop()
        broker.close()


def _camera_tiles_ready(driver: Any) -> bool:
    """Three camera tiles, each with a loaded picture, an answer and the camera node's admitted count."""
    return bool(
        driver.execute_script("""
        const tiles = [...document.querySelectorAll('.camera.tile[data-camera]')];
        return tiles.length === 3 && tiles.every((t) => {
          const img = t.querySelector('img.stream');
          const admitted = t.querySelector('dd[data-key="admitted"]');
          return img && img.complete && img.naturalWidth > 0 && t.querySelector('.cam-pred').dataset.frame
                 && admitted && Number(admitted.textContent) > 0;
        });""")
    )


@needs_browser
def test_a_one_camera_fleet_shows_one_camera_tile(live: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    web = live["web"]
    assert wait_until(lambda: _state(web).predictions_seen > 0, 20)
    browser.get(web.url)
    WebDriverWait(browser, 5).until(
        lambda d: d.execute_script(
            "const i = document.getElementById('stream'); return i && i.complete && i.naturalWidth > 0;"
        )
    )
    tiles = browser.find_elements(By.CSS_SELECTOR, ".camera.tile")
    assert [t.get_attribute("data-camera") for t in tiles] == ["cam0"]
    assert not browser.find_element(By.CSS_SELECTOR, "main").get_attribute("class")  # the page's usual layout
    assert [c.name for c in _state(web).cameras] == ["cam0"]
    browser.get("about:blank")


@needs_browser
def test_three_cameras_show_three_tiles_each_with_its_stream_answer_and_counts(
    cams: dict[str, Any], browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    web, fleet = cams["web"], cams["fleet"]
    names = [n for n, _ in CAMERAS]
    # Every camera answered at least once and the camera node's stats (every 2 s) name all three.
    assert wait_until(lambda: [c.name for c in _state(web).cameras if c.prediction and c.admitted] == names, 30)
    browser.get(web.url)
    WebDriverWait(browser, 10).until(_camera_tiles_ready)
    tiles = browser.find_elements(By.CSS_SELECTOR, ".camera.tile[data-camera]")
    assert [t.get_attribute("data-camera") for t in tiles] == names  # in the fleet file's order
    for tile, name in zip(tiles, names):
        assert tile.find_element(By.CSS_SELECTOR, ".name").text == name
        assert tile.find_element(By.CSS_SELECTOR, ".cam-pred .cls").text in fleet.manifest.class_names
        src = tile.find_element(By.CSS_SELECTOR, "img.stream").get_attribute("src")
        assert f"/stream.mjpg?camera={name}&" in src
        for key in ("offered", "skipped", "lost", "accuracy", "e2e_p50_ms"):
            assert tile.find_element(By.CSS_SELECTOR, f'dd[data-key="{key}"]').text != "–", (name, key)
    assert "multi" in browser.find_element(By.CSS_SELECTOR, "main").get_attribute("class")
    assert browser.find_element(By.ID, "pred-camera").text in names
    # One stream per camera, and the view takes the frames while they are open.
    assert wait_until(lambda: _state(web).stream_clients == 3 and _state(web).frames_subscribed, 5)
    browser.get("about:blank")
    assert wait_until(lambda: not _state(web).frames_subscribed, 5)


def test_api_state_and_metrics_have_a_section_per_camera(cams: dict[str, Any]) -> None:
    web = cams["web"]
    names = [n for n, _ in CAMERAS]
    assert wait_until(lambda: all(c.prediction and c.admitted for c in _state(web).cameras), 30)
    state = _state(web)
    assert [(c.name, c.index, c.stream) for c in state.cameras] == [
        (n, i, f"/stream.mjpg?camera={n}") for i, n in enumerate(names)
    ]
    for cam in state.cameras:
        assert cam.prediction is not None and cam.prediction.camera == cam.name and cam.predictions_seen > 0
        assert cam.offered is not None and cam.admitted is not None and cam.offered >= cam.admitted > 0
        assert cam.skipped is not None and cam.lost is not None and cam.e2e_p50_ms is not None
        assert cam.accuracy is not None  # dataset:// frames carry labels
    assert state.prediction is not None and state.prediction.camera in names

    code, body = _get(web.url + "metrics")
    assert code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(body.decode())
        for s in fam.samples
    }
    for name in names:
        labels = (("board", "camera"), ("camera", name))
        assert samples[("vitfleet_camera_feed_admitted_frames_total", labels)] > 0
        assert samples[("vitfleet_camera_feed_offered_frames_total", labels)] > 0
        for metric in ("skipped", "lost", "answered_late"):
            assert (f"vitfleet_camera_feed_{metric}_frames_total", labels) in samples
        assert ("vitfleet_camera_feed_end_to_end_quantile_seconds", (*labels, ("quantile", "0.5"))) in samples
        assert 0.0 <= samples[("vitfleet_camera_feed_accuracy_ratio", labels)] <= 1.0
    # The node-wide series keep their names and labels.
    assert samples[("vitfleet_camera_frames_sent_total", (("board", "camera"),))] > 0
    assert ("vitfleet_camera_skipped_total", (("board", "camera"),)) in samples


@pytest.mark.parametrize(
    "query, needle",
    [
        ("camera=nowhere", "no camera 'nowhere' in fleet demo; its cameras: north, gate, dock"),
        ("camera=..%2Fetc%0Aevil", "not a camera name (letters, digits, _ and - only) in fleet demo; its cameras: "),
        ("camera=north&camera=gate", "one camera at a time; its cameras: north, gate, dock"),
    ],
)
def test_an_unknown_cameras_stream_is_a_one_line_404(cams: dict[str, Any], query: str, needle: str) -> None:
    web = cams["web"]
    assert wait_until(lambda: len(_state(web).cameras) == 3, 30)
    code, body = _get(web.url + "stream.mjpg?" + query)
    text = body.decode()
    assert code == 404 and text.count("\n") == 1 and text.endswith("\n") and needle in text, text


def _prediction(camera: str) -> bytes:
    now = time.time_ns()
    return (
        Prediction(
            frame_id=1,
            camera=camera,
            capture_ns=now,
            class_id=0,
            class_name="x",
            score=0.5,
            label=None,
            degraded=False,
            missing_parts=[],
            parts=[],
            wait_ms=0.0,
            fusion_ms=0.0,
            fused_ns=now,
        )
        .model_dump_json()
        .encode()
    )


def test_a_flood_of_camera_names_stays_bounded_and_counted(cams: dict[str, Any]) -> None:
    from vitfleet.agent.mqtt_client import MqttLink
    from vitfleet.topics import Topics

    broker, fleet = cams["broker"], cams["fleet"]
    topics = Topics(fleet.config.name)
    web = open_view(broker.config, fleet.config.name, "127.0.0.1:0").start()  # its own view: the page's stays
    link = MqttLink(broker.config, fleet.config.name, "test", "flood", lambda t, p: None, []).start()
    try:
        assert wait_until(lambda: {c.name for c in _state(web).cameras} >= {n for n, _ in CAMERAS}, 30)
        bogus = [f"bogus{i}" for i in range(MAX_CAMERAS + 10)]
        for name in bogus:
            link.publish(topics.predictions(name), _prediction(name), qos=1)
        link.publish(topics.predictions("north"), _prediction("gate"), qos=1)  # named for another camera
        link.publish(topics.predictions("north"), b"{not json", qos=1)
        link.publish(topics.predictions("bad name!"), _prediction("bad name!"), qos=1)  # not a camera name
        link.publish(topics.frames, b"\x00" * 10, qos=1)  # not a frame
        # 3 real cameras first, then bogus names up to the bound: the rest are refused and counted.
        assert wait_until(lambda: _state(web).malformed.get("cameras", 0) >= len(bogus) + 3 - MAX_CAMERAS, 10)
        state = _state(web)
        assert len(state.cameras) == MAX_CAMERAS
        assert state.malformed.get("camera", 0) >= 2 and state.malformed.get("json", 0) >= 1
        assert _get(web.url + f"stream.mjpg?camera={bogus[-1]}")[0] == 404
        code, body = _get(web.url + "api/state")
        assert code == 200 and ViewState.model_validate_json(body).broker_connected
    finally:
        link.stop()
        web.stop()
