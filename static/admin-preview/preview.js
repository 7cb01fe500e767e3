// The topology's graph on its admin page, drawn by the vendored Cytoscape.js.
// Reads the topology JSON the page embeds (json_script "topology-graph"); loads nothing else.
(function () {
  "use strict";

  // Force-directed layouts get slow and unreadable past a few dozen processes; a circle
  // still shows the shape of a big graph at a glance.
  const FORCE_LAYOUT_MAX = 60;
  // Past this many channels arrows become noise and cost: draw plain straight lines.
  const ARROWS_MAX = 600;

  // A process's initial value is its one key besides the name: balance, tokens, jobs or forks.
  function initialValue(process) {
    const key = Object.keys(process).find((k) => k !== "name");
    return key === undefined ? 0 : process[key];
  }

  function elements(topology) {
    const nodes = topology.processes.map((p) => ({
      data: { id: p.name, label: `${p.name}\n${initialValue(p)}` },
    }));
    // A channel with fault settings (delay, reorder, loss) is drawn dashed.
    const edges = topology.channels.map(([src, dst, faults]) => ({
      data: { id: `${src}->${dst}`, source: src, target: dst },
      classes: faults && Object.keys(faults).length ? "faulty" : "",
    }));
    return nodes.concat(edges);
  }

  function style(channelCount) {
    const arrows = channelCount <= ARROWS_MAX;
    return [
      {
        selector: "node",
        style: {
          label: "data(label)",
          "text-wrap": "wrap",
          "text-valign": "center",
          "font-size": 9,
          width: 34,
          height: 34,
          "background-color": "#79aec8",
          color: "#123",
        },
      },
      {
        selector: "edge",
        style: arrows
          ? { width: 1.5, "curve-style": "bezier", "target-arrow-shape": "triangle", "line-color": "#999", "target-arrow-color": "#999" }
          : { width: 0.5, "curve-style": "haystack", "line-color": "#bbb" },
      },
      { selector: "edge.faulty", style: { "line-style": "dashed", "line-color": "#c0392b", "target-arrow-color": "#c0392b" } },
    ];
  }

  function draw() {
    const container = document.getElementById("topology-preview");
    const source = document.getElementById("topology-graph");
    if (!container || !source || typeof cytoscape !== "function") return;
    const topology = JSON.parse(source.textContent);
    const n = topology.processes.length;
    cytoscape({
      container,
      elements: elements(topology),
      style: style(topology.channels.length),
      layout: n <= FORCE_LAYOUT_MAX ? { name: "cose", animate: false, randomize: false } : { name: "circle" },
      wheelSensitivity: 0.3,
      textureOnViewport: n > FORCE_LAYOUT_MAX,
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
