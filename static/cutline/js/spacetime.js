// The space-time diagram (D3): one line per process, time to the right; an arrow per
// message from its send to its receive, markers dashed in their snapshot's colour, a dot
// where a process recorded, and the cut of the selected snapshot drawn through those dots.
//
// Its data is the run's event log (GET events.json, from the store's log with vector
// clocks), matched here: a send and a receive are one message when they name the same
// channel and seq. A send with no receive in the window is still in flight at its end.

import { snapshotColour } from "./model.js";

// Lanes far enough apart to read the arrows between them, closer when there are many.
const laneHeight = (n) => (n <= 6 ? 56 : n <= 20 ? 34 : 14);
const MARGIN = { top: 18, right: 24, bottom: 34, left: 70 };

function clockText(clock) {
  return Object.entries(clock || {})
    .map(([k, v]) => `${k}:${v}`)
    .join(" ");
}

function describe(e) {
  const what = {
    send: `sends seq ${e.seq} to ${e.peer}`,
    receive: `receives seq ${e.seq} from ${e.peer}`,
    marker_send: `sends the marker of snapshot ${e.snapshot} to ${e.peer} (seq ${e.seq})`,
    marker_receive: `receives the marker of snapshot ${e.snapshot} from ${e.peer} (seq ${e.seq})`,
    record: `records its state for snapshot ${e.snapshot}`,
    initiate: `starts snapshot ${e.snapshot}`,
  }[e.kind];
  return `${e.process} ${what || e.kind}\nvector clock {${clockText(e.clock)}}`;
}

export function drawSpacetime(container, diagram, order) {
  const root = d3.select(container);
  root.selectAll("*").remove();
  if (!diagram) {
    root.append("p").attr("class", "hint").text("Loading the event log…");
    return;
  }
  const events = diagram.events.filter((e) =>
    ["send", "receive", "marker_send", "marker_receive", "record", "initiate"].includes(e.kind),
  );
  if (!events.length || (diagram.snapshot !== null && !diagram.found)) {
    root
      .append("p")
      .attr("class", "hint")
      .text(
        diagram.snapshot !== null && !diagram.found
          ? `The events of snapshot ${diagram.snapshot} are no longer in the run's event log (it keeps the newest events only).`
          : "No events yet: start the run.",
      );
    return;
  }
  const lanes = order.length ? order : diagram.processes;
  const width = Math.max(container.clientWidth || 900, 600);
  const height = MARGIN.top + MARGIN.bottom + laneHeight(lanes.length) * Math.max(lanes.length - 1, 1) + 10;
  const t0 = d3.min(events, (e) => e.t);
  const t1 = Math.max(d3.max(events, (e) => e.t), t0 + 0.001);
  const x = d3.scaleLinear().domain([t0, t1]).range([MARGIN.left, width - MARGIN.right]);
  const y = d3.scalePoint().domain(lanes).range([MARGIN.top, height - MARGIN.bottom]);

  const svg = root.append("svg").attr("width", width).attr("height", height);
  const defs = svg.append("defs");
  const arrow = (id, colour, shape) =>
    defs
      .append("marker")
      .attr("id", id)
      .attr("viewBox", "0 0 10 10")
      .attr("refX", 9)
      .attr("refY", 5)
      .attr("markerWidth", 6)
      .attr("markerHeight", 6)
      .attr("orient", "auto")
      .append("path")
      .attr("d", shape === "diamond" ? "M0,5 L5,0 L10,5 L5,10 z" : "M0,0 L10,5 L0,10 z")
      .attr("fill", colour);
  arrow("st-arrow", "#9aa3b5", "triangle");

  svg
    .append("g")
    .selectAll("line")
    .data(lanes)
    .join("line")
    .attr("class", "lane")
    .attr("x1", MARGIN.left)
    .attr("x2", width - MARGIN.right)
    .attr("y1", (p) => y(p))
    .attr("y2", (p) => y(p));
  svg
    .append("g")
    .selectAll("text")
    .data(lanes)
    .join("text")
    .attr("class", "lane-label")
    .attr("x", MARGIN.left - 10)
    .attr("y", (p) => y(p) + 4)
    .attr("text-anchor", "end")
    .text((p) => p);
  svg
    .append("g")
    .attr("class", "axis")
    .attr("transform", `translate(0,${height - MARGIN.bottom + 12})`)
    .call(
      d3
        .axisBottom(x)
        .ticks(Math.max(2, Math.floor(width / 110)))
        .tickFormat((t) => `+${(t - t0).toFixed(2)} s`),
    );

  // Match sends with receives: one arrow per message or marker.
  const sends = new Map();
  const arrows = [];
  for (const e of events) {
    if (e.kind === "send" || e.kind === "marker_send") sends.set(`${e.kind}|${e.process}|${e.peer}|${e.seq}`, e);
  }
  for (const e of events) {
    if (e.kind !== "receive" && e.kind !== "marker_receive") continue;
    const kind = e.kind === "receive" ? "send" : "marker_send";
    const s = sends.get(`${kind}|${e.peer}|${e.process}|${e.seq}`);
    if (s) {
      arrows.push({ from: s, to: e, marker: kind === "marker_send" });
      sends.delete(`${kind}|${e.peer}|${e.process}|${e.seq}`);
    }
  }
  const inFlight = [...sends.values()]; // sent, not received within the window
  const snapshotsSeen = [...new Set(events.filter((e) => e.snapshot !== undefined).map((e) => e.snapshot))];
  for (const id of snapshotsSeen) arrow(`st-marker-${id}`, snapshotColour(id), "diamond");

  const g = svg.append("g");
  g.selectAll("line.message")
    .data(arrows.filter((a) => !a.marker))
    .join("line")
    .attr("class", "message")
    .attr("x1", (a) => x(a.from.t))
    .attr("y1", (a) => y(a.from.process))
    .attr("x2", (a) => x(a.to.t))
    .attr("y2", (a) => y(a.to.process))
    .attr("marker-end", "url(#st-arrow)");
  g.selectAll("line.pending")
    .data(inFlight.filter((s) => s.kind === "send"))
    .join("line")
    .attr("class", "message")
    .attr("stroke-dasharray", "2 3")
    .attr("x1", (s) => x(s.t))
    .attr("y1", (s) => y(s.process))
    .attr("x2", (s) => Math.min(x(s.t) + 18, width - MARGIN.right))
    .attr("y2", (s) => y(s.process) + (y(s.peer) > y(s.process) ? 8 : -8));
  g.selectAll("line.marker")
    .data(arrows.filter((a) => a.marker))
    .join("line")
    .attr("class", "marker")
    .attr("stroke", (a) => snapshotColour(a.from.snapshot))
    .attr("x1", (a) => x(a.from.t))
    .attr("y1", (a) => y(a.from.process))
    .attr("x2", (a) => x(a.to.t))
    .attr("y2", (a) => y(a.to.process))
    .attr("marker-end", (a) => `url(#st-marker-${a.from.snapshot})`);

  // The cut: through each process's record point of the selected snapshot, lane by lane.
  if (diagram.snapshot !== null) {
    const records = new Map(
      events.filter((e) => e.kind === "record" && e.snapshot === diagram.snapshot).map((e) => [e.process, e]),
    );
    const points = lanes.filter((p) => records.has(p)).map((p) => [x(records.get(p).t), y(p)]);
    if (points.length) {
      const path = [[points[0][0], MARGIN.top - 10], ...points, [points[points.length - 1][0], height - MARGIN.bottom + 8]];
      svg
        .append("path")
        .attr("class", "cut")
        .attr("stroke", snapshotColour(diagram.snapshot))
        .attr("d", d3.line()(path))
        .append("title")
        .text(`the cut of snapshot ${diagram.snapshot}: every process's recorded state`);
    }
  }

  const dots = svg.append("g");
  dots
    .selectAll("circle.event")
    .data(events.filter((e) => e.kind === "send" || e.kind === "receive"))
    .join("circle")
    .attr("class", "event")
    .attr("r", 2)
    .attr("cx", (e) => x(e.t))
    .attr("cy", (e) => y(e.process))
    .append("title")
    .text(describe);
  dots
    .selectAll("circle.record")
    .data(events.filter((e) => e.kind === "record" || e.kind === "initiate"))
    .join("circle")
    .attr("class", "record")
    .attr("r", (e) => (e.kind === "record" ? 5 : 8))
    .attr("fill", (e) => (e.kind === "record" ? snapshotColour(e.snapshot) : "none"))
    .attr("stroke", (e) => snapshotColour(e.snapshot))
    .attr("stroke-width", 2)
    .attr("cx", (e) => x(e.t))
    .attr("cy", (e) => y(e.process))
    .append("title")
    .text(describe);
}
