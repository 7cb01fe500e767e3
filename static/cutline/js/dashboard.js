// The run dashboard: one model, one socket, and renderers that draw the model.
//
// Every input — a frame, a click, a fetched export — goes through dispatch(), which
// applies it to the model (model.js) and asks for a redraw on the next animation frame.
// Side effects (fetching a snapshot's export or the event log) are decided here, from
// the model, never inside applyEvent.

import { applyEvent, emptyModel, runningSnapshots } from "./model.js";
import { createGraph } from "./graph.js";
import { renderHeader, renderHistory, renderInspector, renderSnapshotPanel, renderTotals } from "./panels.js";
import { drawSpacetime } from "./spacetime.js";
import { Stream } from "./stream.js";

const FOLLOW_EVERY_MS = 2000;
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
  totals: $("totals"),
  inspector: { head: $("inspector-head"), body: $("inspector-body") },
  snapshot: { title: $("snapshot-title"), progress: $("progress"), verdict: $("verdict"), recorded: $("recorded") },
  history: { summary: $("history-summary"), body: document.querySelector("#history tbody") },
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

// --- drawing --------------------------------------------------------------------------------

let drawnDiagram = null;

function draw(now) {
  if (dirty) {
    dirty = false;
    renderHeader(model, el, now);
    renderTotals(model, el.totals);
    renderInspector(model, el.inspector);
    renderSnapshotPanel(model, el.snapshot, config);
    renderHistory(model, el.history);
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
    send({ command: "snapshot", process: el.initiator.value });
  });
}
el.inspector.head.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-snapshot-from]");
  if (button) send({ command: "snapshot", process: button.dataset.snapshotFrom });
});
el.notice.addEventListener("click", () => dispatch({ type: "dismiss" }));
el.history.body.addEventListener("click", (e) => {
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
