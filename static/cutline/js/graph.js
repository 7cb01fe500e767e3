// The topology as a live Cytoscape graph: render(model) sets what each process and
// channel shows; animate(model, now) moves the markers along their channels.
//
// A process shows its name and its share of the workload's conserved quantity; it fills
// with a slice of each running snapshot's colour once it has recorded for it (so
// concurrent snapshots show side by side), and is ringed in the colour of the finished
// snapshot the panel shows. A channel shows how many messages are in flight, and while
// a snapshot runs it is dashed ("recording") until its marker arrives, then solid with
// the number of messages recorded in it. What is shown of a snapshot is what the player
// (player.js) has released so far, not the newest news: a marker travels a hop's time.
//
// A finished snapshot's cut stays on the graph until dismissed (model.cut): each process
// ringed in its colour with the value it recorded, each channel with the messages
// recorded in it.
//
// Channel faults show on the edge itself: finely dotted for a reordering (non-FIFO)
// channel, and a badge at its source end for delay and loss (with the frames
// retransmitted so far). A process whose watchpoint fired carries a flag and an amber
// ring; the processes of a deadlock the shown snapshot found, and the channels between
// them, are drawn red.

import {
  channelFaults,
  channelId,
  deadlockCycle,
  inFlight,
  runningSnapshots,
  snapshotColour,
  unitValue,
} from "./model.js";

const DEADLOCK = "#c92a2a";
const HIT = "#f59f00";

const WAIT_AT = 0.92; // where a marker shown sent waits until its arrival is shown
const MAX_SLICES = 8;

const STYLE = [
  {
    selector: "node.process",
    style: {
      label: "data(label)",
      "text-wrap": "wrap",
      "text-valign": "center",
      "text-halign": "center",
      "font-size": 12,
      "font-family": "DejaVu Sans Mono, monospace",
      color: "#1d2330",
      "text-outline-color": "#ffffff",
      "text-outline-width": 2,
      width: 54,
      height: 54,
      "background-color": "#ffffff",
      "border-width": 2,
      "border-color": "#5b6478",
      "pie-size": "100%",
    },
  },
  { selector: "node.process.selected", style: { "border-color": "#2952cc", "border-width": 4 } },
  {
    selector: "edge",
    style: {
      "curve-style": "bezier",
      "control-point-step-size": 36,
      "target-arrow-shape": "triangle",
      "arrow-scale": 0.9,
      width: "data(width)",
      "line-color": "#b7bfcc",
      "target-arrow-color": "#b7bfcc",
      label: "data(label)",
      "font-size": 10,
      "font-family": "DejaVu Sans Mono, monospace",
      color: "#3d4454",
      "text-background-color": "#ffffff",
      "text-background-opacity": 0.85,
      "text-background-padding": 1,
    },
  },
  { selector: "edge.reorder", style: { "line-style": "dashed", "line-dash-pattern": [2, 3] } },
  { selector: "edge.recording", style: { "line-style": "dashed", "line-dash-pattern": [6, 4] } },
  {
    selector: "edge.faulty",
    style: {
      "source-label": "data(badge)",
      "source-text-offset": 34,
      "source-text-margin-y": -8,
      color: "#a61e4d",
    },
  },
  { selector: "edge.deadlock", style: { width: 4, "z-index": 5 } },
  { selector: "node.process.hit", style: { "border-style": "double", "border-width": 6, "border-color": HIT } },
  { selector: "node.process.deadlock", style: { "border-color": DEADLOCK, "border-width": 5 } },
  { selector: "edge.selected", style: { "line-color": "#2952cc", "target-arrow-color": "#2952cc" } },
  {
    selector: "node.marker",
    style: {
      shape: "diamond",
      width: 14,
      height: 14,
      "background-color": "data(colour)",
      "border-width": 1,
      "border-color": "#ffffff",
      events: "no",
      "z-index": 10,
    },
  },
];

// Many processes: smaller nodes and labels, so the graph stays readable at a glance.
const BIG_STYLE = [
  { selector: "node.process", style: { width: 30, height: 30, "font-size": 8 } },
  { selector: "edge", style: { "font-size": 8, "arrow-scale": 0.6 } },
];

export function createGraph(container, model, handlers) {
  const elements = [];
  for (const name of model.order) elements.push({ group: "nodes", data: { id: name, label: name }, classes: "process" });
  for (const c of Object.values(model.channels)) {
    elements.push({ group: "edges", data: { id: c.id, source: c.src, target: c.dst, label: "", badge: "", width: 1.5 } });
  }
  // Small topologies on a circle, in the run's order (rings look like rings); larger
  // ones laid out by force, starting from that circle so the result is the same each time.
  const big = model.order.length > 12;
  const cy = cytoscape({
    container,
    elements,
    style: big ? [...STYLE, ...BIG_STYLE] : STYLE,
    layout: { name: "circle", padding: 40, startAngle: -Math.PI / 2 },
    minZoom: 0.2,
    maxZoom: 3,
    boxSelectionEnabled: false,
  });
  if (big) {
    cy.layout({
      name: "cose",
      randomize: false,
      animate: false,
      padding: 20,
      nodeRepulsion: () => 200000,
      idealEdgeLength: () => 50,
      gravity: 0.3,
      numIter: 1500,
    }).run();
  }
  cy.on("tap", "node.process", (e) => handlers.selectProcess(e.target.id()));
  cy.on("tap", "edge", (e) => handlers.selectChannel(e.target.id()));
  cy.on("tap", (e) => {
    if (e.target === cy) handlers.clear();
  });
  window.addEventListener("resize", () => cy.resize());
  return new Graph(cy);
}

class Graph {
  constructor(cy) {
    this.cy = cy;
    this.drawn = new Map(); // element id → what it shows now, to skip unchanged ones
  }

  // Cytoscape redraws whatever is touched: touch only what changed.
  changed(id, key) {
    if (this.drawn.get(id) === key) return false;
    this.drawn.set(id, key);
    return true;
  }

  render(model) {
    const running = runningSnapshots(model).slice(-MAX_SLICES);
    const ringed = model.cut !== null ? model.snapshots[model.cut] || null : null;
    const cycle = deadlockCycle(ringed);
    const cycleEdges = deadlockEdges(model, cycle);
    this.cy.batch(() => {
      for (const name of model.order) {
        const node = this.cy.getElementById(name);
        const p = model.processes[name];
        if (!node.nonempty() || !p) continue;
        const hit = model.hits[name];
        const cutValue = ringed ? recordedValue(model, ringed, name) : undefined;
        const recordedInFocus = cutValue !== undefined;
        const label = `${name}\n${unitValue(model, p)}${recordedInFocus ? `\n[${cutValue}]` : ""}${hit ? `\n⚑ #${hit.watchpoint}` : ""}`;
        const slices = running.filter((s) => name in s.recorded);
        const selected = !!(model.selection && model.selection.kind === "process" && model.selection.id === name);
        const inCycle = cycle.includes(name);
        const key = `${label}|${slices.map((s) => s.id)}|${recordedInFocus ? ringed.id : ""}|${selected}|${inCycle}`;
        if (!this.changed(name, key)) continue;
        node.data("label", label);
        const style = {};
        for (let i = 1; i <= MAX_SLICES; i++) {
          const s = slices[i - 1];
          style[`pie-${i}-background-color`] = s ? snapshotColour(s.id) : "#ffffff";
          style[`pie-${i}-background-size`] = s ? `${100 / slices.length}%` : "0%";
        }
        style["border-color"] = recordedInFocus ? snapshotColour(ringed.id) : "#5b6478";
        style["border-width"] = recordedInFocus ? 4 : 2;
        node.style(style);
        node.toggleClass("selected", selected);
        node.toggleClass("hit", !!hit);
        // The class's colour must win over the ring set above.
        node.toggleClass("deadlock", inCycle);
        if (inCycle) node.style({ "border-color": DEADLOCK, "border-width": 5 });
      }
      for (const c of Object.values(model.channels)) {
        const edge = this.cy.getElementById(c.id);
        if (!edge.nonempty()) continue;
        const n = inFlight(model, c);
        let active = [...running].reverse().find((s) => s.channels[c.id]);
        if (!active && ringed && ringed.channels[c.id]) active = ringed;
        const state = active ? active.channels[c.id] : null;
        let label = n ? `${n}` : "";
        let colour = "#b7bfcc";
        if (state && state.status === "recording") {
          label = `${n} · rec ${state.count || 0}`;
          colour = snapshotColour(active.id);
        } else if (state && state.status === "closed") {
          label = `${n} · ${state.count ?? (state.messages || []).length} recorded`;
          colour = snapshotColour(active.id);
        }
        const selected = model.selection && model.selection.kind === "channel" && model.selection.id === c.id;
        const faults = channelFaults(model, c.id);
        const badge = faultBadge(faults, model.faultCounts.retransmissions[c.id] || 0);
        const deadlocked = cycleEdges.has(c.id);
        if (deadlocked) colour = DEADLOCK;
        const key = `${label}|${colour}|${state ? state.status : ""}|${selected}|${badge}|${!!faults.reorder}|${deadlocked}`;
        if (!this.changed(c.id, key)) continue;
        edge.data({ label, badge, width: 1.5 + Math.min(5, Math.log2(1 + n)) });
        edge.toggleClass("recording", !!(state && state.status === "recording"));
        edge.toggleClass("reorder", !!faults.reorder);
        edge.toggleClass("faulty", badge !== "");
        edge.toggleClass("deadlock", deadlocked);
        edge.toggleClass("selected", !!selected);
        edge.style({ "line-color": selected ? "#2952cc" : colour, "target-arrow-color": selected ? "#2952cc" : colour });
      }
    });
  }

  // Markers are drawn from the model's marker list; their position is a function of
  // time only, so this runs on every animation frame while any is on its way.
  animate(model, now) {
    const alive = new Set();
    for (const m of model.markers) {
      const id = `marker-${m.snapshot}-${m.src}-${m.dst}-${m.seq}`;
      // The player shows its arrival a hop after its sending at the earliest (then the
      // marker is gone); one still on its way in the run waits near the end.
      const f = Math.min(WAIT_AT, (now - m.sentAt) / model.play.hopMs);
      const edge = this.cy.getElementById(channelId(m.src, m.dst));
      if (!edge.nonempty()) continue;
      alive.add(id);
      const position = pointOn(edge, Math.max(0, f));
      let node = this.cy.getElementById(id);
      if (node.empty()) {
        node = this.cy.add({
          group: "nodes",
          data: { id, colour: snapshotColour(m.snapshot) },
          classes: "marker",
          position,
          selectable: false,
          grabbable: false,
        });
      } else {
        node.position(position);
      }
    }
    this.cy.nodes(".marker").forEach((node) => {
      if (!alive.has(node.id())) node.remove();
    });
    return alive.size > 0;
  }

  processPosition(name) {
    const node = this.cy.getElementById(name);
    return node.nonempty() ? node.renderedPosition() : null;
  }
}

// The value a process recorded in a snapshot (its share of the conserved quantity), as
// the page saw it recorded or, for a snapshot finished before the page opened, its export.
function recordedValue(model, snapshot, name) {
  const key = model.run ? model.run.unit || model.run.value_key || "balance" : "balance";
  let state = snapshot.recorded[name];
  if (!state && snapshot.export) {
    const r = snapshot.export.processes.find((x) => x.process === name);
    state = r && r.state;
  }
  if (state) return state[key] ?? "✓";
  return name in snapshot.recorded ? "✓" : undefined;
}

// Delay and loss as a badge at the channel's source end, e.g. "+100ms loss 20% ↻7".
function faultBadge(faults, retransmitted) {
  const parts = [];
  if (faults.delay_ms) parts.push(`+${faults.delay_ms}ms`);
  if (faults.loss) parts.push(`loss ${Math.round(faults.loss * 100)}%`);
  if (retransmitted) parts.push(`↻${retransmitted}`);
  return parts.join(" ");
}

// The channels of a wait-for cycle: between each process and the next, whichever way
// the topology has a channel (a request goes one way, the grant it waits for the other).
function deadlockEdges(model, cycle) {
  const ids = new Set();
  for (let i = 0; i < cycle.length; i++) {
    const a = cycle[i];
    const b = cycle[(i + 1) % cycle.length];
    for (const id of [channelId(a, b), channelId(b, a)]) if (model.channels[id]) ids.add(id);
  }
  return ids;
}

// A point a fraction f along an edge, following its curve: Cytoscape draws a bezier
// edge as a quadratic curve through its midpoint, whose control point follows from it.
function pointOn(edge, f) {
  const a = edge.sourceEndpoint();
  const b = edge.targetEndpoint();
  const mid = edge.midpoint();
  const c = { x: 2 * mid.x - (a.x + b.x) / 2, y: 2 * mid.y - (a.y + b.y) / 2 };
  const u = 1 - f;
  return { x: u * u * a.x + 2 * u * f * c.x + f * f * b.x, y: u * u * a.y + 2 * u * f * c.y + f * f * b.y };
}
