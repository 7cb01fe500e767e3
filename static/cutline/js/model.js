// The dashboard's model and the one function that changes it: applyEvent(model, event).
//
// In the manner of RaftScope, everything the page knows is plain data here, and every
// change to it is an event: a frame from the server (state, delta, heartbeat, reply,
// error), a change of the connection, a click, a fetched export. applyEvent reads
// nothing but its arguments (no DOM, no clock, no network: an event that needs the time
// carries it as `now`), so the same events give the same model; render(model) in
// graph.js and panels.js draws it and never changes it.
//
// The stream contract (snapshots/live/state.py): each source numbers its frames of the run
// 1, 2, 3 …; the state says which number it is current to (`cursors`). A delta at or
// below its source's cursor is already in the state; one beyond cursor + 1 means frames
// were lost, so the model sets stream.reload and the caller fetches state.json.
//
// A restore starts the run over in a new epoch (snapshots/live/publisher.py). The server says so
// with a `restore` frame; a delta, heartbeat or reply naming a newer epoch says it too
// (for a page that missed that frame). Either way the page starts over from state.json,
// and a delta of an older epoch still counts for its source's numbering but changes
// nothing: its processes are no longer in that state.
//
// A snapshot's events are not applied as they arrive but handed to the player
// (player.js), which releases them in happened-before order, a marker hop at a time;
// a `tick` event (every animation frame) lets it release the next ones.

import { behindMs, emptyPlayer, enqueue, takeReady, traced } from "./player.js";

export const PALETTE = ["#e8590c", "#1c7ed6", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#d6336c", "#5c7cfa"];

export function snapshotColour(id) {
  return PALETTE[id % PALETTE.length];
}

export function channelId(src, dst) {
  return `${src}→${dst}`;
}

export const ALGORITHMS = { "chandy-lamport": "Chandy–Lamport", "lai-yang": "Lai–Yang" };
export const PROPERTIES = ["conservation", "termination", "deadlock"];
// Commands whose refusal is shown next to their form rather than as a toast.
const INLINE_ERRORS = new Set(["watch", "faults"]);

export function emptyModel() {
  return {
    run: null,
    order: [], // process names, in the run's order
    processes: {}, // name → {name, state, sent, applied, clock, counters, fifo, recording}
    channels: {}, // "p→q" → {id, src, dst, messages: {seq: payload}} (the newest we were told of)
    snapshots: {}, // id → snapshot (history row + live progress + export once fetched)
    history: { counts: { running: 0, complete: 0, failed: 0 }, duration: { count: 0, sum: 0, min: null, max: null } },
    markers: [], // {snapshot, src, dst, seq, sentAt}: markers shown on their way (page ms)
    play: emptyPlayer(), // the snapshot events waiting to be shown, and the trace of those shown
    cut: null, // the finished snapshot whose cut stays on the graph until dismissed
    stream: { cursors: {}, suspect: {}, reload: false, reason: null, reloads: 0 },
    connection: { status: "connecting", code: null, message: null, lastMessageAt: null },
    permissions: { control: false },
    heartbeat: 5,
    notice: null, // {kind: "error" | "info", text, at}
    selection: null, // {kind: "process" | "channel", id}
    focus: null, // the snapshot the panel shows
    frames: 0,
    lag: null, // seconds from the oldest change in the last frame to its arrival
    diagram: null, // {snapshot, found, processes, events}
    liveState: true, // false: the store has lost the run (Redis restarted)
    restores: [], // {id, snapshot, epoch, at, replayed_messages, dropped_frames}, oldest first
    banner: null, // the restore this page saw happen: shown until put away
    watchpoints: [], // {id, process, condition, kind, mode, cooldown_s, algorithm, enabled, hits, last_hit_at}
    hits: {}, // process → its last watchpoint hit {watchpoint, snapshot, detail, at}
    firstHolding: {}, // stable property → the first complete snapshot in which it held
    faultCounts: { retransmissions: {}, lost: {} }, // by channel
    errors: {}, // command → the reason it was refused, shown by its form
    comparePick: [], // up to two snapshot ids picked in the history to compare
  };
}

// --- derived values (pure helpers the renderers share) ------------------------------------

// Applied from a channel: its contiguous prefix, and (non-FIFO) the seqs beyond it.
function appliedFrom(dst, src) {
  return { last: dst.applied[src] || 0, above: (dst.above && dst.above[src]) || [] };
}

export function inFlight(model, channel) {
  const src = model.processes[channel.src];
  const dst = model.processes[channel.dst];
  if (!src || !dst) return 0;
  const applied = appliedFrom(dst, channel.src);
  return Math.max(0, (src.sent[channel.dst] || 0) - applied.last - applied.above.length);
}

// The value a process shows on the graph: the conserved quantity, or (a workload that
// conserves nothing) its initial value's key, e.g. jobs.
export function unitValue(model, process) {
  const key = model.run ? model.run.unit || model.run.value_key || "balance" : "balance";
  return process.state[key] ?? 0;
}

export function channelFaults(model, id) {
  return (model.run && model.run.faults && model.run.faults[id]) || {};
}

// A snapshot the run can be restored from: complete, a consistent cut, conserving.
export function isSound(snapshot) {
  const v = snapshot.verdict;
  return snapshot.status === "complete" && !!v && v.consistent && v.conserved !== false;
}

// The deadlock a snapshot found, as the cycle of processes (each waits for the next).
export function deadlockCycle(snapshot) {
  const d = snapshot && snapshot.properties && snapshot.properties.deadlock;
  return d && d.holds === true && Array.isArray(d.cycle) ? d.cycle : [];
}

// The history, newest first, with each restore between the snapshots of the epochs
// before and after it (a restore to epoch E starts epoch E).
export function historyRows(model) {
  const snapshots = Object.values(model.snapshots).sort((a, b) => b.id - a.id);
  const restores = [...model.restores].sort((a, b) => b.epoch - a.epoch);
  const rows = [];
  let r = 0;
  for (const snapshot of snapshots) {
    const epoch = snapshot.epoch ?? 0;
    while (r < restores.length && restores[r].epoch > epoch) rows.push({ kind: "restore", restore: restores[r++] });
    rows.push({ kind: "snapshot", snapshot });
  }
  while (r < restores.length) rows.push({ kind: "restore", restore: restores[r++] });
  return rows;
}

export function restoreWords(restore) {
  const k = restore.replayed_messages;
  const what = k === 1 ? "1 recorded message re-entered its channel" : `${k} recorded messages re-entered their channels`;
  return `restored from snapshot #${restore.snapshot} (epoch ${restore.epoch}): ${what}`;
}

export function progress(model, snapshot) {
  const processesTotal = snapshot.reported.processes_total || model.order.length;
  const channelsTotal = snapshot.reported.channels_total || Object.keys(model.channels).length;
  if (snapshot.status !== "running") {
    return {
      processes: snapshot.reported.processes,
      processesTotal,
      channels: snapshot.reported.channels,
      channelsTotal,
    };
  }
  const closed = Object.values(snapshot.channels).filter((c) => c.status === "closed").length;
  return {
    processes: Math.max(Object.keys(snapshot.recorded).length, snapshot.reported.processes),
    processesTotal,
    channels: Math.max(closed, snapshot.reported.channels),
    channelsTotal,
  };
}

export function runningSnapshots(model) {
  return Object.values(model.snapshots)
    .filter((s) => s.status === "running")
    .sort((a, b) => a.id - b.id);
}

// --- applyEvent ------------------------------------------------------------------------------

export function applyEvent(model, event) {
  switch (event.type) {
    case "state":
      return applyState(model, event);
    case "delta":
      return applyDelta(model, event);
    case "heartbeat":
      return applyHeartbeat(model, event);
    case "reply":
      return applyReply(model, event);
    case "error":
      if (INLINE_ERRORS.has(event.command)) model.errors[event.command] = event.message;
      else model.notice = { kind: "error", text: event.message, at: event.now };
      return model;
    case "restore":
      return applyRestore(model, event);
    case "watchpoints":
      model.watchpoints = event.watchpoints.map((w) => ({ ...w }));
      return model;
    case "pick":
      return applyPick(model, event.snapshot);
    case "clear-error":
      delete model.errors[event.command];
      return model;
    case "dismiss-banner":
      model.banner = null;
      return model;
    case "connection":
      model.connection = {
        ...model.connection,
        status: event.status,
        code: event.code ?? null,
        message: event.message ?? null,
      };
      return model;
    case "select":
      model.selection = event.kind ? { kind: event.kind, id: event.id } : null;
      return model;
    case "focus": {
      model.focus = event.snapshot;
      // A finished snapshot the person opens shows its cut on the graph (until dismissed).
      const opened = model.snapshots[event.snapshot];
      if (opened && opened.status !== "running") model.cut = event.snapshot;
      return model;
    }
    case "export":
      if (model.snapshots[event.snapshot.id]) model.snapshots[event.snapshot.id].export = event.snapshot;
      return model;
    case "diagram":
      model.diagram = event.diagram;
      return model;
    case "dismiss":
      model.notice = null;
      return model;
    case "tick":
      return play(model, event.now, false);
    case "jump":
      model.markers = [];
      return play(model, event.now, true);
    case "pace":
      model.play.hopMs = event.hopMs;
      return model;
    case "dismiss-cut":
      model.cut = null;
      return model;
    default:
      return model;
  }
}

function needReload(model, reason) {
  model.stream.reload = true;
  model.stream.reason = reason;
  return model;
}

function applyState(model, state) {
  const old = model;
  // A state of another epoch than the page had: the run was restored since. What the
  // page knew of messages and markers belongs to the old epoch.
  const sameEpoch = !old.run || (old.run.epoch ?? 0) === (state.run.epoch ?? 0);
  const m = emptyModel();
  m.connection = { ...old.connection, lastMessageAt: state.now ?? old.connection.lastMessageAt };
  m.selection = old.selection;
  m.focus = old.focus;
  m.frames = old.frames;
  m.diagram = old.diagram;
  m.notice = old.notice;
  // The state holds the effects of every event told before it: none is left to show.
  m.play = { ...old.play, buffer: [], sent: {} };
  m.cut = sameEpoch ? old.cut : null;
  m.hits = sameEpoch ? old.hits : {};
  m.errors = old.errors;
  m.comparePick = old.comparePick;
  m.banner = old.banner;
  m.stream.reloads = old.stream.reloads + (old.run ? 1 : 0);
  m.run = { ...state.run };
  m.permissions = { ...state.permissions };
  m.heartbeat = state.heartbeat;
  for (const p of state.processes) {
    m.order.push(p.name);
    m.processes[p.name] = { ...p };
  }
  const listed = state.in_flight || {};
  for (const id of state.channels) {
    const [src, dst] = id.split("→");
    const before = sameEpoch ? old.channels[id] : undefined;
    const messages = before ? { ...before.messages } : {};
    for (const [seq, payload] of listed[id] || []) messages[seq] = payload;
    m.channels[id] = { id, src, dst, messages };
    trimChannel(m, m.channels[id]);
  }
  m.restores = (state.restores || []).map((r) => ({ ...r }));
  m.watchpoints = (state.watchpoints || []).map((w) => ({ ...w }));
  m.firstHolding = { ...(state.first_holding || {}) };
  if (state.fault_counts) m.faultCounts = structuredClone(state.fault_counts);
  if (!sameEpoch) {
    const restore = m.restores.find((r) => r.epoch === state.run.epoch);
    if (restore) m.banner = restore;
  }
  for (const summary of state.snapshots) {
    const before = old.snapshots[summary.id];
    m.snapshots[summary.id] = fromSummary(summary, before);
  }
  for (const [id, live] of Object.entries(state.live)) {
    const snap = m.snapshots[id];
    if (!snap) continue;
    snap.recorded = { ...live.recorded };
    snap.channels = {};
    for (const [cid, c] of Object.entries(live.channels)) snap.channels[cid] = { ...c };
  }
  m.history = structuredClone(state.history);
  m.liveState = state.live_state !== false;
  if (!m.liveState) {
    m.notice = {
      kind: "error",
      text: "This run's processes are no longer in the store (Cutline was restarted since it ran): only its snapshots are left.",
      at: state.now ?? 0,
    };
  }
  m.stream.cursors = { ...state.cursors };
  if (m.focus === null) {
    const newest = Object.values(m.snapshots).sort((a, b) => b.id - a.id)[0];
    if (newest) m.focus = newest.id;
  }
  return m;
}

function fromSummary(summary, before) {
  return {
    ...summary,
    recorded: before ? before.recorded : {},
    channels: before ? before.channels : {},
    export: before ? before.export : null,
  };
}

function ensureSnapshot(model, id, initiator) {
  let snap = model.snapshots[id];
  if (!snap) {
    snap = model.snapshots[id] = {
      id,
      run: model.run ? model.run.id : null,
      initiator: initiator ?? "?",
      status: "running",
      reason: null,
      started_at: null,
      finished_at: null,
      duration: null,
      reported: {
        processes: 0,
        processes_total: model.order.length,
        channels: 0,
        channels_total: Object.keys(model.channels).length,
      },
      verdict: null,
      algorithm: "chandy-lamport",
      epoch: model.run ? model.run.epoch ?? 0 : 0,
      properties: null,
      watchpoint: null,
      trigger: null,
      recorded: {},
      channels: {},
      export: null,
    };
    model.history.counts.running += 1;
    model.focus = id;
  }
  return snap;
}

function applyDelta(model, d) {
  if (model.stream.reload) return model;
  const last = model.stream.cursors[d.source];
  if (last === undefined) {
    if (d.seq !== 1) return needReload(model, `missed frames 1–${d.seq - 1} of source ${d.source}`);
  } else if (d.seq <= last) {
    return model; // already in the state this page started from
  } else if (d.seq !== last + 1) {
    return needReload(model, `missed frames ${last + 1}–${d.seq - 1} of source ${d.source}`);
  }
  const epoch = model.run ? model.run.epoch ?? 0 : 0;
  if (d.epoch !== undefined && d.epoch > epoch) return needReload(model, `the run was restored (epoch ${d.epoch})`);
  model.stream.cursors[d.source] = d.seq;
  model.frames += 1;
  model.connection.lastMessageAt = d.now ?? model.connection.lastMessageAt;
  if (d.wallNow !== undefined && d.since) model.lag = Math.max(0, d.wallNow - d.since);
  if (d.epoch !== undefined && d.epoch < epoch) {
    // Built before the restore: only what is not about its processes still holds.
    for (const e of d.snapshot_events || []) if (e.kind === "finished") finishSnapshot(model, e.snapshot);
    return applyRunSettings(model, d.run_settings);
  }

  for (const [name, change] of Object.entries(d.processes || {})) {
    const p = model.processes[name];
    if (!p) continue;
    for (const key of ["state", "sent", "applied", "above", "clock", "counters", "fifo"]) {
      if (change[key]) p[key] = { ...p[key], ...change[key] };
    }
    if (change.recording) p.recording = change.recording;
  }
  for (const [src, dst, seq, payload] of d.messages || []) {
    const channel = model.channels[channelId(src, dst)];
    if (channel) channel.messages[seq] = payload;
  }
  for (const channel of Object.values(model.channels)) trimChannel(model, channel);
  // An event commits at its step (`t`); a frame's time stands in for one told without it.
  const told = (d.snapshot_events || []).map((e) => (e.t === undefined && d.t ? { ...e, t: d.t } : e));
  enqueue(model.play, told, d.now);
  applyRunSettings(model, d.run_settings);
  return play(model, d.now, false);
}

// Show the snapshot events whose turn has come (all of them: jump to now).
function play(model, now, all) {
  for (const e of takeReady(model.play, model.processes, now, (id) => cutComplete(model, id), all)) {
    if (e.kind !== "finished") traced(model.play, e);
    else model.play.shown += 1;
    applySnapshotEvent(model, e, now, e.t);
  }
  return model;
}

// How long the oldest snapshot event waiting to be shown has waited (ms).
export function behind(model, now) {
  return behindMs(model.play, now);
}

// Whether the page shows a snapshot's cut whole: every process recorded, every channel closed.
function cutComplete(model, id) {
  const snap = model.snapshots[id];
  if (!snap) return true;
  const total = progress(model, { ...snap, status: "running" });
  return total.processes >= total.processesTotal && total.channels >= total.channelsTotal;
}

function trimChannel(model, channel) {
  const dst = model.processes[channel.dst];
  const applied = dst ? appliedFrom(dst, channel.src) : { last: 0, above: [] };
  for (const seq of Object.keys(channel.messages)) {
    if (Number(seq) <= applied.last || applied.above.includes(Number(seq))) delete channel.messages[seq];
  }
}

// A run's settings from a delta, heartbeat or reply. A newer epoch is not taken over:
// it means the run was restored, and the page starts over from its state.
function applyRunSettings(model, settings) {
  if (!settings || !model.run) return model;
  const { epoch, ...rest } = settings;
  if (epoch !== undefined && epoch > (model.run.epoch ?? 0)) return needReload(model, `the run was restored (epoch ${epoch})`);
  Object.assign(model.run, rest);
  return model;
}

function applyRestore(model, frame) {
  const restore = frame.restore;
  if (!model.restores.some((r) => r.id === restore.id)) model.restores.push({ ...restore });
  model.banner = restore;
  model.markers = [];
  model.cut = null;
  model.notice = { kind: "info", text: `Run ${restoreWords(restore)}.`, at: frame.now };
  if (model.run && restore.epoch > (model.run.epoch ?? 0)) needReload(model, `the run was restored from snapshot #${restore.snapshot}`);
  return model;
}

function applyPick(model, id) {
  const picked = model.comparePick.filter((x) => x !== id);
  if (picked.length === model.comparePick.length) picked.push(id);
  model.comparePick = picked.slice(-2);
  return model;
}

function applyWatchpointHit(model, e, t) {
  const at = t ? new Date(t * 1000).toISOString() : null;
  model.hits[e.process] = { watchpoint: e.watchpoint, snapshot: e.snapshot, detail: e.detail, at };
  const w = model.watchpoints.find((x) => x.id === e.watchpoint);
  if (w) {
    w.hits += 1;
    w.last_hit_at = at;
    if (w.mode === "once") w.enabled = false;
  }
  const snap = ensureSnapshot(model, e.snapshot, e.process);
  snap.initiator = e.process;
  snap.watchpoint = w ? { id: w.id, process: w.process, condition: w.condition } : { id: e.watchpoint, process: null, condition: "?" };
  snap.trigger = e.detail;
  if (w) snap.algorithm = w.algorithm;
  model.focus = e.snapshot; // open the snapshot the watchpoint took
  return model;
}

function applySnapshotEvent(model, e, now, t) {
  if (e.kind === "finished") return finishSnapshot(model, e.snapshot);
  if (e.kind === "watchpoint") return applyWatchpointHit(model, e, t);
  const snap = ensureSnapshot(model, e.snapshot, e.kind === "initiate" ? e.process : undefined);
  switch (e.kind) {
    case "initiate":
      snap.initiator = e.process;
      if (e.algorithm) snap.algorithm = e.algorithm;
      break;
    case "record": {
      snap.recorded[e.process] = e.state ?? null;
      for (const channel of Object.values(model.channels)) {
        if (channel.dst === e.process && !snap.channels[channel.id]) {
          snap.channels[channel.id] = { status: "recording", count: 0 };
        }
      }
      break;
    }
    case "recording":
      if (!snap.channels[channelId(e.peer, e.process)]) snap.channels[channelId(e.peer, e.process)] = { status: "recording", count: 0 };
      break;
    case "recorded_message": {
      const c = snap.channels[channelId(e.peer, e.process)];
      if (c && c.status === "recording") c.count = (c.count || 0) + 1;
      break;
    }
    case "channel_closed":
      snap.channels[channelId(e.peer, e.process)] = {
        status: "closed",
        count: e.count ?? (e.messages || []).length,
        messages: e.messages || [],
      };
      break;
    case "marker_send":
      model.markers.push({ snapshot: e.snapshot, src: e.process, dst: e.peer, seq: e.seq, sentAt: now });
      break;
    case "marker_receive":
      // It has arrived: the receiver's colour (it recorded, or closed the channel) shows it now.
      model.markers = model.markers.filter((mk) => !(mk.src === e.peer && mk.dst === e.process && mk.seq === e.seq));
      break;
    default:
      break;
  }
  return model;
}

function finishSnapshot(model, summary) {
  const before = model.snapshots[summary.id];
  const wasRunning = !before || before.status === "running";
  if (!before) model.history.counts.running += 1; // it is counted out again below
  const snap = (model.snapshots[summary.id] = fromSummary(summary, before));
  if (wasRunning && summary.status !== "running") {
    const counts = model.history.counts;
    counts.running = Math.max(0, counts.running - 1);
    counts[summary.status] = (counts[summary.status] || 0) + 1;
    if (summary.status === "complete" && summary.duration !== null) {
      const d = model.history.duration;
      d.count += 1;
      d.sum += summary.duration;
      d.min = d.min === null ? summary.duration : Math.min(d.min, summary.duration);
      d.max = d.max === null ? summary.duration : Math.max(d.max, summary.duration);
    }
  }
  if (summary.status === "complete") {
    for (const name of PROPERTIES) {
      const result = summary.properties && summary.properties[name];
      const first = model.firstHolding[name];
      if (result && result.holds === true && (first === undefined || summary.id < first)) model.firstHolding[name] = summary.id;
    }
  }
  if (model.focus === null || model.focus === summary.id || !model.snapshots[model.focus] ||
      model.snapshots[model.focus].status !== "running") {
    model.focus = summary.id;
  }
  snap.needsExport = true;
  // Its cut stays on the graph until dismissed (each worker tells of the finish: once is enough).
  if (wasRunning && summary.status !== "running") model.cut = summary.id;
  return model;
}

function applyHeartbeat(model, beat) {
  model.connection.lastMessageAt = beat.now ?? model.connection.lastMessageAt;
  if (model.stream.reload) return model;
  // A cursor ahead of us for a whole heartbeat means its frame is not coming: the last
  // frame of a quiet run has no successor to reveal the gap, so this is how it shows.
  for (const [source, cursor] of Object.entries(model.stream.suspect)) {
    if ((model.stream.cursors[source] || 0) < cursor) {
      return needReload(model, `frame ${cursor} of source ${source} never arrived`);
    }
  }
  model.stream.suspect = {};
  for (const [source, cursor] of Object.entries(beat.cursors || {})) {
    if ((model.stream.cursors[source] || 0) < cursor) model.stream.suspect[source] = cursor;
  }
  if (beat.fault_counts) model.faultCounts = beat.fault_counts;
  return applyRunSettings(model, beat.run_settings);
}

function applyReply(model, reply) {
  applyRunSettings(model, reply.run_settings);
  const words = {
    start: "Run started.",
    pause: "Run paused: no new messages; those in flight are still delivered.",
    stop: "Run stopped.",
    rate: `Rate set to ${reply.run_settings ? reply.run_settings.rate : "?"} steps per second per process.`,
  };
  let text = words[reply.command] || "Done.";
  if (reply.snapshot) {
    const before = model.snapshots[reply.snapshot.id];
    if (before) {
      // Its first events got here before the reply: they are newer, keep them.
      before.initiator = reply.snapshot.initiator;
      before.algorithm = reply.snapshot.algorithm;
      before.started_at = before.started_at || reply.snapshot.started_at;
    } else {
      model.snapshots[reply.snapshot.id] = fromSummary(reply.snapshot, undefined);
      model.history.counts.running += 1;
    }
    model.focus = reply.snapshot.id;
    text = `Snapshot ${reply.snapshot.id} started at ${reply.snapshot.initiator} (${ALGORITHMS[reply.snapshot.algorithm] || reply.snapshot.algorithm}).`;
  } else if (reply.restore) {
    applyRestore(model, { restore: reply.restore, now: reply.now });
    text = `Run ${restoreWords(reply.restore)}.`;
  } else if (reply.watchpoints) {
    model.watchpoints = reply.watchpoints.map((w) => ({ ...w }));
    delete model.errors.watch;
    text = reply.command === "watch"
      ? `Watchpoint #${reply.watchpoint.id} added: ${reply.watchpoint.condition}.`
      : `Watchpoint #${reply.watchpoint.id} removed.`;
  } else if (reply.command === "faults") {
    if (model.run) model.run.faults = reply.faults;
    delete model.errors.faults;
    const words = faultWords(reply.faults[reply.channel] || {});
    text = words !== "none" ? `Faults of ${reply.channel} set: ${words}.` : `${reply.channel} is a plain FIFO channel again.`;
  }
  model.notice = { kind: "info", text, at: reply.now };
  return model;
}

export function faultWords(faults) {
  const parts = [];
  if (faults.delay_ms) parts.push(`delay ${faults.delay_ms} ms`);
  if (faults.reorder) parts.push("reorder (not FIFO)");
  if (faults.loss) parts.push(`loss ${Math.round(faults.loss * 100)}%`);
  return parts.join(", ") || "none";
}
