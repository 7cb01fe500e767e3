// The run dashboard: one model, one socket, and renderers that draw the model.
//
// Every input — a frame, a click, a fetched export — goes through dispatch(), which
// applies it to the model (model.js) and asks for a redraw on the next animation frame.
// Side effects (fetching a snapshot's export or the event log) are decided here, from
// the model, never inside applyEvent.

import { applyEvent, emptyModel, runningSnapshots } from "./model.js";
import { createGraph } from "./graph.js";
import {
  renderBanner,
  renderHeader,
  renderHistory,
  renderInspector,
  renderPlayback,
  renderSnapshotPanel,
  renderTotals,
  renderWatchpoints,
} from "./panels.js";
import { drawSpacetime } from "./spacetime.js";
import { Stream } from "./stream.js";

const FOLLOW_EVERY_MS = 2000;
const HOP_SETTING = "cutline.hopMs"; // the marker hop a person chose, kept across pages
const config = JSON.parse(document.getElementById("dashboard-config").textContent);
const $ = (id) => document.getElementById(id);
const el = {
  status: $("run-status"),
  rateText: $("run-rate"),
  rate: $("rate"),
  connection: $("connection"),
  controls: $("controls"),
  notice: $("notice"),
  initiator: $("initiator"),
  algorithm: $("algorithm"),
  totals: $("totals"),
  banner: $("banner"),
  inspector: { head: $("inspector-head"), form: $("inspector-form"), body: $("inspector-body") },
  watchpoints: {
    form: $("watch-form"),
    condition: $("watch-condition"),
    hint: $("watch-hint"),
    process: $("watch-process"),
    error: $("watch-error"),
    list: document.querySelector("#watchpoints tbody"),
  },
  snapshot: {
    title: $("snapshot-title"),
    progress: $("progress"),
    verdict: $("verdict"),
    actions: $("snapshot-actions"),
    recorded: $("recorded"),
  },
  history: { summary: $("history-summary"), compare: $("compare-picked"), body: document.querySelector("#history tbody") },
  playback: {
    hop: $("hop-ms"),
    behind: $("behind"),
    jump: $("jump-now"),
    cut: $("cut-shown"),
    cutWords: $("cut-words"),
  },
  spacetime: $("spacetime"),
  spacetimeCaption: $("spacetime-caption"),
};

let model = emptyModel();
let graph = null;
let dirty = true;
let diagramFor; // the snapshot (or null: the newest events) the diagram was last fetched for
let commandId = 0;

// For the browser tests and for curious people in the console.
window.cutline = {
  get model() {
    return model;
  },
  get cy() {
    return graph ? graph.cy : null;
  },
  // The snapshot events in the order the page showed them: {kind, snapshot, process,
  // channel, seq, event}, `event` the id in /api/runs/{id}/events/.
  get trace() {
    return model.play.trace;
  },
  send: (command) => send(command),
};

function dispatch(event) {
  model = applyEvent(model, event);
  dirty = true;
  afterEvent(event);
}

function afterEvent(event) {
  if (event.type === "state" && !graph && model.order.length) {
    graph = createGraph($("graph"), model, {
      selectProcess: (name) => dispatch({ type: "select", kind: "process", id: name }),
      selectChannel: (id) => dispatch({ type: "select", kind: "channel", id }),
      clear: () => dispatch({ type: "select", kind: null }),
    });
  }
  for (const snap of Object.values(model.snapshots)) {
    if (snap.needsExport) {
      snap.needsExport = false;
      fetchExport(snap.id);
      // A moment later, so the diagram shows what happened after the cut too.
      if (snap.id === model.focus) setTimeout(() => fetchDiagram(snap.id), 1000);
    }
  }
  if (event.type === "state" && diagramFor === undefined) fetchDiagram(null);
}

async function fetchJSON(url) {
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.json();
}

async function fetchExport(id) {
  try {
    dispatch({ type: "export", snapshot: await fetchJSON(config.export.replace("/0/", `/${id}/`)) });
  } catch (error) {
    dispatch({ type: "error", message: `Could not load snapshot ${id}: ${error.message}`, now: performance.now() });
  }
}

async function fetchDiagram(snapshot) {
  diagramFor = snapshot;
  const query = snapshot === null ? "?limit=600" : `?snapshot=${snapshot}&limit=2000`;
  try {
    const diagram = await fetchJSON(config.events + query);
    if (diagramFor === snapshot) dispatch({ type: "diagram", diagram });
  } catch (error) {
    dispatch({ type: "error", message: `Could not load the event log: ${error.message}`, now: performance.now() });
  }
}

function send(command) {
  commandId += 1;
  stream.send({ ...command, id: commandId });
}

function algorithm() {
  return el.algorithm ? el.algorithm.value : "chandy-lamport";
}

function restore(id) {
  const run = model.run ? model.run.id : "";
  const question =
    `Restore run ${run} to what snapshot ${id} recorded?\n\n` +
    "Every process goes back to its recorded state and every recorded message re-enters its channel; " +
    "what happened since is lost.";
  if (window.confirm(question)) send({ command: "restore", snapshot: id });
}

// --- drawing --------------------------------------------------------------------------------

let drawnDiagram = null;

function draw(now) {
  // The player releases the snapshot events whose turn has come (player.js).
  const shown = model.play.shown;
  model = applyEvent(model, { type: "tick", now });
  if (model.play.shown !== shown) {
    dirty = true;
    afterEvent({ type: "tick" });
  }
  renderPlayback(model, el.playback, now);
  if (dirty) {
    dirty = false;
    renderHeader(model, el, now);
    renderTotals(model, el.totals);
    renderInspector(model, el.inspector);
    renderWatchpoints(model, el.watchpoints, watchedCondition);
    renderBanner(model, el.banner);
    renderSnapshotPanel(model, el.snapshot, config);
    renderHistory(model, el.history, config);
    if (graph) graph.render(model);
    if (model.diagram !== drawnDiagram) {
      drawnDiagram = model.diagram;
      drawSpacetime(el.spacetime, model.diagram, model.order);
      el.spacetimeCaption.textContent = model.diagram
        ? model.diagram.snapshot === null
          ? `the newest ${model.diagram.events.length} events`
          : `around snapshot ${model.diagram.snapshot}`
        : "";
    }
  }
  if (graph) graph.animate(model, now);
  if (model.notice && !el.notice.hidden && model.notice.kind === "info" && now - model.notice.at > 6000) dirty = true;
  requestAnimationFrame(draw);
}

// --- controls -------------------------------------------------------------------------------

if (el.controls) {
  for (const button of el.controls.querySelectorAll("button[data-command]")) {
    button.addEventListener("click", () => send({ command: button.dataset.command }));
  }
  $("rate-form").addEventListener("submit", (e) => {
    e.preventDefault();
    send({ command: "rate", rate: Number(el.rate.value) });
  });
  $("snapshot-form").addEventListener("submit", (e) => {
    e.preventDefault();
    send({ command: "snapshot", process: el.initiator.value, algorithm: algorithm() });
  });
}
el.inspector.head.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-snapshot-from]");
  if (button) send({ command: "snapshot", process: button.dataset.snapshotFrom, algorithm: algorithm() });
});

// The channel's fault form lives in the inspector and is redrawn with it: listen above it.
el.inspector.form.addEventListener("submit", (e) => {
  const form = e.target.closest("#faults-form");
  if (!form) return;
  e.preventDefault();
  const faults = {
    delay_ms: Number(form.elements.delay_ms.value || 0),
    reorder: form.elements.reorder.checked,
    loss: Number(form.elements.loss.value || 0),
  };
  send({ command: "faults", channel: form.dataset.channel, faults });
});
el.inspector.form.addEventListener("click", (e) => {
  const form = e.target.closest("#faults-form");
  if (form && e.target.closest("#faults-plain")) send({ command: "faults", channel: form.dataset.channel, faults: {} });
});

let watchedCondition = ""; // the condition last sent, to point at its error
if (el.watchpoints.form) {
  el.watchpoints.form.addEventListener("submit", (e) => {
    e.preventDefault();
    watchedCondition = el.watchpoints.condition.value;
    const process = el.watchpoints.process.value || null;
    send({
      command: "watch",
      condition: watchedCondition,
      process,
      mode: $("watch-mode").value,
      cooldown_s: Number($("watch-cooldown").value || 5),
      algorithm: $("watch-algorithm").value,
    });
  });
  el.watchpoints.condition.addEventListener("input", () => dispatch({ type: "clear-error", command: "watch" }));
}
el.watchpoints.list.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-unwatch]");
  if (button) send({ command: "unwatch", watchpoint: Number(button.dataset.unwatch) });
});

el.snapshot.actions.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-restore]");
  if (button) restore(Number(button.dataset.restore));
});
el.banner.addEventListener("click", (e) => {
  if (e.target.closest("[data-dismiss-banner]")) dispatch({ type: "dismiss-banner" });
});
el.notice.addEventListener("click", () => dispatch({ type: "dismiss" }));
el.playback.jump.addEventListener("click", () => dispatch({ type: "jump", now: performance.now() }));
el.playback.cut.addEventListener("click", (e) => {
  if (e.target.closest("#dismiss-cut")) dispatch({ type: "dismiss-cut" });
});
el.playback.hop.addEventListener("change", () => {
  const hopMs = Number(el.playback.hop.value);
  if (!Number.isFinite(hopMs) || hopMs < 0 || hopMs > 10000) return;
  localStorage.setItem(HOP_SETTING, String(hopMs));
  dispatch({ type: "pace", hopMs });
});
{
  const kept = Number(localStorage.getItem(HOP_SETTING));
  if (localStorage.getItem(HOP_SETTING) !== null && Number.isFinite(kept) && kept >= 0 && kept <= 10000) {
    dispatch({ type: "pace", hopMs: kept });
  }
}
el.history.body.addEventListener("click", (e) => {
  const restoreButton = e.target.closest("button[data-restore]");
  if (restoreButton) return restore(Number(restoreButton.dataset.restore));
  const pick = e.target.closest("input[data-pick]");
  if (pick) return dispatch({ type: "pick", snapshot: Number(pick.dataset.pick) });
  if (e.target.closest("label")) return; // the click on the label reaches its checkbox next
  const row = e.target.closest("tr[data-snapshot]");
  if (!row) return;
  const id = Number(row.dataset.snapshot);
  dispatch({ type: "focus", snapshot: id });
  const snap = model.snapshots[id];
  if (snap && snap.status !== "running" && !snap.export) fetchExport(id);
  fetchDiagram(id);
});
$("spacetime-refresh").addEventListener("click", () => {
  const focus = model.snapshots[model.focus];
  fetchDiagram(focus && runningSnapshots(model).length === 0 ? focus.id : null);
});
setInterval(() => {
  if ($("spacetime-follow").checked && model.connection.status === "live") fetchDiagram(null);
}, FOLLOW_EVERY_MS);

const stream = new Stream({
  socketPath: config.socket,
  statePath: config.state,
  dispatch,
  getModel: () => model,
});
stream.connect();
requestAnimationFrame(draw);
