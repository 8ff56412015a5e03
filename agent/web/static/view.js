// vitfleet web view: polls /api/state once a second and draws it; each camera's frame comes as an MJPEG stream.
// Plain DOM + <canvas>, no libraries (boards are offline). Board, camera and class names come from the network:
// they only ever go into textContent, never into HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 1000;
// Chromium opens at most 6 connections to one host and a stream holds one for good: beyond this many cameras a
// tile links to its stream instead, so the page's own polling always gets through.
const MAX_STREAMS = 4;
let viewReachable = true;
const cameraTiles = new Map();   // camera name -> its tile's elements (kept: redrawing would reopen its stream)

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function fmt(v, digits = 1, unit = "") {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return (typeof v === "number" ? v.toFixed(digits) : String(v)) + unit;
}

// ---- camera tiles: picture, latest answer, the camera node's counts ----------------------------------------
function startStream(t) {
  if (!t.img) return;
  // A new URL each time: after the view or the network comes back, the browser must open a fresh stream.
  t.img.src = t.stream + (t.stream.includes("?") ? "&" : "?") + "t=" + Date.now();
  t.broken = false;
}

function makeCameraTile(c, live) {
  const root = el("div", "camera tile");
  root.dataset.camera = c.name;
  const head = el("div", "name");
  head.append(el("span", "", c.name || "camera"));
  root.append(head);
  const t = { root, stream: c.stream, img: null, broken: false };
  if (live) {
    t.img = el("img", "stream");
    t.img.alt = "latest frame of camera " + c.name + " with the fleet's prediction";
    t.img.addEventListener("error", () => {
      t.broken = true;
      setTimeout(() => { if (t.root.isConnected) startStream(t); }, 2000);
    });
    root.append(t.img);
    startStream(t);
  } else {
    const a = el("a", "stream-link", "open this camera's stream");
    a.href = c.stream;
    a.target = "_blank";
    root.append(a);
  }
  t.pred = el("div", "cam-pred");
  t.cls = el("span", "cls");
  t.score = el("span", "score");
  t.flag = el("span", "flag");
  t.pred.append(t.cls, t.score, t.flag);
  t.counts = el("dl", "counts");
  root.append(t.pred, t.counts);
  return t;
}

function updateCameraTile(t, c) {
  const p = c.prediction;
  t.cls.textContent = p ? p.class_name : "waiting for the first prediction";
  t.score.textContent = p ? p.score.toFixed(2) : "";
  t.flag.hidden = !(p && p.degraded);
  t.flag.textContent = p && p.degraded ? "degraded" : "";
  t.pred.dataset.frame = p ? String(p.frame_id) : "";
  t.pred.dataset.degraded = p && p.degraded ? "true" : "false";
  const rows = [
    ["offered", "offered", fmt(c.offered, 0)], ["admitted", "admitted", fmt(c.admitted, 0)],
    ["skipped", "skipped", fmt(c.skipped, 0)], ["lost", "lost", fmt(c.lost, 0)],
    ["accuracy", "accuracy", c.accuracy === null ? "–" : fmt(100 * c.accuracy, 1, " %")],
    ["e2e_p50_ms", "e2e p50", fmt(c.e2e_p50_ms, 1, " ms")],
  ];
  t.counts.replaceChildren(...rows.flatMap(([key, k, v]) => {
    const dd = el("dd", "", v);
    dd.dataset.key = key;
    return [el("dt", "", k), dd];
  }));
}

function drawCameras(cameras) {
  // Before any camera is known: the fleet's stream, which says it is waiting for frames.
  const cams = cameras.length ? cameras : [{ name: "", stream: "/stream.mjpg", prediction: null }];
  const box = $("cameras");
  const single = cams.length === 1;
  box.classList.toggle("single", single);
  document.querySelector("main").classList.toggle("multi", !single);
  const names = new Set(cams.map((c) => c.name));
  for (const [name, t] of cameraTiles) {
    if (names.has(name)) continue;
    if (t.img) t.img.src = "";   // closes its stream
    t.root.remove();
    cameraTiles.delete(name);
  }
  cams.forEach((c, i) => {
    let t = cameraTiles.get(c.name);
    if (!t) { t = makeCameraTile(c, i < MAX_STREAMS); cameraTiles.set(c.name, t); }
    // The first camera's picture keeps the id the page's single picture always had.
    if (t.img) t.img.id = i === 0 ? "stream" : "";
    if (box.children[i] !== t.root) box.insertBefore(t.root, box.children[i] || null);
    if (c.name) updateCameraTile(t, c);
  });
}

function restartBrokenStreams(all) {
  for (const t of cameraTiles.values()) if (all || t.broken) startStream(t);
}

// ---- banner -------------------------------------------------------------------------------------------------
function banner(text) {
  const b = $("banner");
  b.hidden = !text;
  b.textContent = text || "";
}

// ---- tiles --------------------------------------------------------------------------------------------------
function tile(b) {
  const t = el("div", "tile " + b.status);
  t.dataset.board = b.name;
  t.dataset.status = b.status;
  const head = el("div", "name");
  head.append(el("span", "", b.name), el("span", "status", b.status));
  t.append(head);
  const dl = el("dl");
  const row = (k, v) => { dl.append(el("dt", "", k), el("dd", "", v)); };
  row("role", b.role || "–");
  if (b.part !== null) row("part", String(b.part));
  row("fps", fmt(b.fps, 1));
  if (b.role === "agent") {
    row("infer p50/p99", fmt(b.infer_p50_ms, 2) + "/" + fmt(b.infer_p99_ms, 2, " ms"));
    row("drops", fmt(b.drops, 0));
  }
  if (b.cpu_percent !== null) row("CPU", fmt(b.cpu_percent, 0, " %"));
  if (b.rss_mb !== null) row("memory", fmt(b.rss_mb, 0, " MB"));
  if (b.watts !== null) {
    const dd = el("dd", "", fmt(b.watts, 2, " W"));
    if (b.power_estimated) dd.append(" ", el("span", "est", "estimated"));
    dl.append(el("dt", "", "power"), dd);
  }
  if (b.status !== "online" && b.last_seen_s !== null) row("last heard", fmt(b.last_seen_s, 0, " s ago"));
  t.append(dl);
  return t;
}

// ---- charts -------------------------------------------------------------------------------------------------
function chart(canvas, points, series, now) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  // The last five minutes (what the server keeps); a younger view spreads what it has over at least a minute.
  const span = points.length ? Math.max(60, Math.min(300, now - points[0].t)) : 60;
  const left = 44, right = 8, top = 8, bottom = 18;
  let max = 0;
  for (const p of points) for (const s of series) { const v = p[s.key]; if (v !== null && v > max) max = v; }
  max = max > 0 ? niceMax(max) : 1;
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#8b939f";
  g.strokeStyle = "#2c323c";
  g.lineWidth = 1;
  for (let i = 0; i <= 2; i++) {
    const y = top + (h - top - bottom) * (1 - i / 2);
    g.beginPath(); g.moveTo(left, y); g.lineTo(w - right, y); g.stroke();
    g.fillText(shortNum(max * i / 2), 4, y + 4);
  }
  g.fillText("−" + (span >= 120 ? Math.round(span / 60) + " min" : Math.round(span) + " s"), left, h - 4);
  g.fillText("now", w - right - 22, h - 4);
  const x = (t) => left + (w - left - right) * (1 - (now - t) / span);
  const y = (v) => top + (h - top - bottom) * (1 - v / max);
  for (const s of series) {
    g.strokeStyle = s.color;
    g.lineWidth = 1.6;
    g.beginPath();
    let pen = false;
    for (const p of points) {
      const v = p[s.key];
      if (now - p.t > span || v === null) { pen = false; continue; }   // a gap stays a gap
      if (pen) g.lineTo(x(p.t), y(v)); else g.moveTo(x(p.t), y(v));
      pen = true;
    }
    g.stroke();
  }
  const last = points.length ? points[points.length - 1] : null;
  if (last) {
    g.fillStyle = series[0].color;
    g.fillText(series.map((s) => shortNum(last[s.key])).join(" / "), w - right - 90, top + 10);
  }
}

function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function shortNum(v) {
  if (v === null || v === undefined) return "–";
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

// ---- one refresh --------------------------------------------------------------------------------------------
function draw(s) {
  $("fleet-name").textContent = s.fleet;
  const broker = $("broker");
  broker.textContent = (s.broker_connected ? "broker " : "broker unreachable ") + s.broker;
  broker.className = "pill " + (s.broker_connected ? "ok" : "bad");
  banner(s.broker_connected ? "" : `broker unreachable at ${s.broker} for ${fmt(s.broker_down_s, 0)} s — ` +
         "reconnecting; the figures below are the last ones received");

  drawCameras(s.cameras);
  const p = s.prediction;
  const several = s.cameras.length > 1;
  $("pred-camera").hidden = !(several && p);
  $("pred-camera").textContent = several && p ? p.camera : "";
  $("pred-class").textContent = p ? p.class_name : "waiting for the first prediction";
  $("pred-score").textContent = p ? p.score.toFixed(2) : "";
  const flag = $("pred-degraded");
  flag.hidden = !(p && p.degraded);
  flag.textContent = p && p.degraded ? "degraded: missing part " + p.missing_parts.join(", ") : "";
  $("prediction").dataset.degraded = p && p.degraded ? "true" : "false";
  $("prediction").dataset.frame = p ? String(p.frame_id) : "";

  $("tiles").replaceChildren(...s.boards.map(tile));

  const m = s.summary;
  const est = m.power_estimated ? " (estimated)" : "";
  const rows = [
    ["predictions / degraded / late", `${fmt(m.predictions, 0)} / ${fmt(m.degraded, 0)} / ${fmt(m.late, 0)}`],
    ["end-to-end p50 / p99 (camera)", `${fmt(m.camera_e2e_p50_ms, 1)} / ${fmt(m.camera_e2e_p99_ms, 1, " ms")}`],
    ["MQTT hop p50 / p99", `${fmt(m.hop_p50_ms, 2)} / ${fmt(m.hop_p99_ms, 2, " ms")}`],
    ["fusion deadline", fmt(m.deadline_ms, 0, " ms")],
    ["frames sent / skipped", `${fmt(m.frames_sent, 0)} / ${fmt(m.skipped, 0)}`],
    ["frames lost / of them answered late", `${fmt(m.lost, 0)} / ${fmt(m.answered_late, 0)}`],
    ["running accuracy", m.accuracy === null ? "–" : fmt(100 * m.accuracy, 1, " %")],
    ["fleet power", fmt(m.fleet_watts, 2, " W") + est],
    ["energy per frame", fmt(m.mj_per_frame, 1, " mJ") + est],
  ];
  $("summary").replaceChildren(...rows.map(([k, v]) => { const tr = el("tr"); tr.append(el("td", "", k), el("td", "", v)); return tr; }));
  $("watts-note").textContent = m.power_estimated ? "(estimated)" : "";

  const now = s.generated_at;
  chart($("chart-e2e"), s.chart, [{ key: "e2e_p50_ms", color: "#4fc3f7" }, { key: "e2e_p99_ms", color: "#ba68c8" }], now);
  chart($("chart-fps"), s.chart, [{ key: "fps", color: "#4cc36f" }], now);
  chart($("chart-watts"), s.chart, [{ key: "fleet_watts", color: "#ffa726" }], now);
  chart($("chart-mj"), s.chart, [{ key: "mj_per_frame", color: "#ffd54f" }], now);

  const body = $("log").tBodies[0];
  body.replaceChildren(...s.log.slice(0, 12).map((r) => {
    const wrong = r.label !== null && r.label !== r.class_id;
    const tr = el("tr", (r.degraded ? "degraded" : "") + (wrong ? " wrong" : ""));
    const verdict = r.label === null ? "–" : (wrong ? "✗ label " + r.label : "✓");
    tr.append(el("td", "", new Date(r.at * 1000).toLocaleTimeString()), el("td", "", (several && r.camera ? r.camera + " " : "") + String(r.frame_id % 1000000)),
              el("td", "", r.class_name), el("td", "", r.score.toFixed(2)), el("td", "", verdict),
              el("td", "", fmt(r.e2e_ms, 1)),
              el("td", "", r.degraded ? "degraded, missing " + r.missing_parts.join(", ") : ""));
    return tr;
  }));
}

async function poll() {
  try {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), 3000);
    const res = await fetch("/api/state", { cache: "no-store", signal: ctrl.signal });
    clearTimeout(timer);
    if (!res.ok) throw new Error("HTTP " + res.status);
    const s = await res.json();
    restartBrokenStreams(!viewReachable);   // the view came back: reopen the streams
    viewReachable = true;
    draw(s);
  } catch (e) {
    viewReachable = false;
    banner("the vitfleet view at " + location.host + " is unreachable — retrying");
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

window.addEventListener("DOMContentLoaded", poll);
