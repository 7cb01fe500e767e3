// The dashboard's model (static/cutline/js/model.js) without a browser: the stream's
// sequence rules, snapshot progress, and markers. Run by `node --test tests/e2e/js/model.test.js`
// (and from pytest by tests/e2e/test_model_js.py).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  applyEvent,
  deadlockCycle,
  emptyModel,
  historyRows,
  inFlight,
  isSound,
  progress,
  behind,
} from "../../../static/cutline/js/model.js";

function state(extra = {}) {
  const proc = (name, outgoing, incoming) => ({
    name,
    state: { balance: 100 },
    sent: Object.fromEntries(outgoing.map((d) => [d, 0])),
    applied: Object.fromEntries(incoming.map((s) => [s, 0])),
    clock: {},
    counters: { messages_sent: 0, messages_applied: 0, markers_sent: 0, markers_received: 0 },
    fifo: {},
    recording: {},
  });
  return {
    type: "state",
    run: { id: 1, topology: "ring3", workload: "bank", unit: "balance", status: "running", rate: 2, expected_total: 300, epoch: 0, faults: {} },
    processes: [proc("p1", ["p2"], ["p3"]), proc("p2", ["p3"], ["p1"]), proc("p3", ["p1"], ["p2"])],
    channels: ["p1→p2", "p2→p3", "p3→p1"],
    snapshots: [],
    history: { counts: { running: 0, complete: 0, failed: 0 }, duration: { count: 0, sum: 0, min: null, max: null } },
    live: {},
    cursors: { a: 4 },
    permissions: { control: true },
    heartbeat: 5,
    ...extra,
  };
}

function delta(source, seq, body = {}, now = 0) {
  return { type: "delta", run: 1, source, seq, t: 0, since: 0, now, ...body };
}

function apply(model, ...events) {
  for (const e of events) model = applyEvent(model, e);
  return model;
}

test("frames at or below the state's cursor are already in it and change nothing", () => {
  const m = apply(emptyModel(), state(), delta("a", 3, { processes: { p1: { state: { balance: 1 } } } }));
  assert.equal(m.processes.p1.state.balance, 100);
  assert.equal(m.stream.reload, false);
});

test("the next frame of a source is applied, a gap asks for a reload", () => {
  let m = apply(emptyModel(), state(), delta("a", 5, { processes: { p1: { state: { balance: 90 }, sent: { p2: 2 } } } }));
  assert.equal(m.processes.p1.state.balance, 90);
  assert.equal(inFlight(m, m.channels["p1→p2"]), 2);
  m = apply(m, delta("a", 7));
  assert.equal(m.stream.reload, true);
  assert.match(m.stream.reason, /missed frames 6–6/);
});

test("a source the state did not know must start at 1", () => {
  assert.equal(apply(emptyModel(), state(), delta("b", 1)).stream.reload, false);
  assert.equal(apply(emptyModel(), state(), delta("b", 2)).stream.reload, true);
});

test("a reload's state takes over: cursors, values, and the frames held meanwhile", () => {
  let m = apply(emptyModel(), state(), delta("a", 9));
  assert.equal(m.stream.reload, true);
  m = apply(m, state({ cursors: { a: 9 } }), delta("a", 9), delta("a", 10, { processes: { p2: { state: { balance: 7 } } } }));
  assert.equal(m.stream.reload, false);
  assert.equal(m.processes.p2.state.balance, 7);
  assert.equal(m.stream.reloads, 1);
});

test("a cursor ahead of the page for a whole heartbeat means its frame was lost", () => {
  let m = apply(emptyModel(), state(), { type: "heartbeat", cursors: { a: 5 } });
  assert.equal(m.stream.reload, false); // frame 5 may still be on its way
  m = apply(m, delta("a", 5), { type: "heartbeat", cursors: { a: 5 } });
  assert.equal(m.stream.reload, false); // it came
  m = apply(m, { type: "heartbeat", cursors: { a: 6 } }, { type: "heartbeat", cursors: { a: 6 } });
  assert.equal(m.stream.reload, true);
});

test("a snapshot's progress: records, recording channels, closed channels, then the verdict", () => {
  let m = apply(emptyModel(), state());
  m = apply(
    m,
    delta("a", 5, {
      snapshot_events: [
        { kind: "initiate", process: "p1", snapshot: 3 },
        { kind: "record", process: "p1", snapshot: 3, state: { balance: 95 } },
      ],
    }),
  );
  const snap = m.snapshots[3];
  assert.equal(snap.initiator, "p1");
  assert.deepEqual(snap.recorded, { p1: { balance: 95 } });
  assert.deepEqual(snap.channels["p3→p1"], { status: "recording", count: 0 });
  assert.equal(m.history.counts.running, 1);
  assert.equal(m.focus, 3);
  m = apply(
    m,
    delta("a", 6, {
      snapshot_events: [{ kind: "channel_closed", process: "p1", peer: "p3", snapshot: 3, count: 1, messages: [[4, { amount: 5 }]] }],
    }),
  );
  assert.equal(m.snapshots[3].channels["p3→p1"].status, "closed");
  assert.deepEqual(progress(m, m.snapshots[3]), { processes: 1, processesTotal: 3, channels: 1, channelsTotal: 3 });
  const summary = {
    id: 3, run: 1, initiator: "p1", status: "complete", reason: null, started_at: null, finished_at: null, duration: 0.25,
    reported: { processes: 3, processes_total: 3, channels: 3, channels_total: 3 },
    verdict: { consistent: true, conserved: true, expected_total: 300, recorded_total: 300, problems: [] },
    verdict_text: "consistent · 300 of 300 conserved · 0 problems",
  };
  m = apply(m, delta("a", 7, { snapshot_events: [{ kind: "finished", snapshot: summary }] }));
  // The page has not shown the whole cut yet: the verdict waits for it (or for "jump to now").
  assert.equal(m.snapshots[3].verdict_text, undefined);
  m = apply(m, { type: "jump", now: 1 });
  assert.equal(m.snapshots[3].verdict_text, "consistent · 300 of 300 conserved · 0 problems");
  assert.deepEqual(m.history.counts, { running: 0, complete: 1, failed: 0 });
  assert.deepEqual(m.history.duration, { count: 1, sum: 0.25, min: 0.25, max: 0.25 });
  assert.equal(m.snapshots[3].needsExport, true);
});

test("a marker is shown travelling for a hop, then arriving, whichever frame comes first", () => {
  const send = { kind: "marker_send", process: "p1", peer: "p2", seq: 1, snapshot: 3, clock: {} };
  const receive = { kind: "marker_receive", process: "p2", peer: "p1", seq: 1, snapshot: 3, clock: {} };
  // The receiver's worker published first: its receipt waits for the sending.
  let m = apply(emptyModel(), state(), delta("b", 1, { snapshot_events: [receive] }, 100));
  assert.deepEqual(m.play.trace, []);
  m = apply(m, delta("a", 5, { processes: { p1: { sent: { p2: 1 } } }, snapshot_events: [send] }, 150));
  assert.deepEqual(m.play.trace.map((e) => e.kind), ["marker_send"]);
  assert.deepEqual(m.markers.map((mk) => [mk.src, mk.dst, mk.sentAt]), [["p1", "p2", 150]]);
  m = apply(m, { type: "tick", now: 150 + m.play.hopMs - 1 });
  assert.equal(m.markers.length, 1); // still on its way
  m = apply(m, { type: "tick", now: 150 + m.play.hopMs });
  assert.deepEqual(m.markers, []);
  assert.deepEqual(m.play.trace.map((e) => [e.kind, e.channel, e.seq]), [
    ["marker_send", "p1→p2", 1],
    ["marker_receive", "p1→p2", 1],
  ]);
  // A marker sent before the state this page started from is shown arriving at once.
  m = apply(emptyModel(), state(), delta("b", 1, { processes: { p1: { sent: { p2: 1 } } }, snapshot_events: [receive] }, 20));
  assert.deepEqual(m.play.trace.map((e) => e.kind), ["marker_receive"]);
});

test("a channel lists the messages in it and forgets those applied", () => {
  let m = apply(
    emptyModel(),
    state(),
    delta("a", 5, { processes: { p1: { sent: { p2: 3 } } }, messages: [["p1", "p2", 2, { amount: 1 }], ["p1", "p2", 3, { amount: 2 }]] }),
  );
  assert.deepEqual(Object.keys(m.channels["p1→p2"].messages), ["2", "3"]);
  m = apply(m, delta("b", 1, { processes: { p2: { applied: { p1: 2 } } } }));
  assert.deepEqual(Object.keys(m.channels["p1→p2"].messages), ["3"]);
  assert.equal(inFlight(m, m.channels["p1→p2"]), 1);
});

test("a refused command is an error notice; a reply updates the run", () => {
  let m = apply(emptyModel(), state(), { type: "error", message: "you are not allowed", now: 5 });
  assert.deepEqual(m.notice, { kind: "error", text: "you are not allowed", at: 5 });
  m = apply(m, { type: "reply", command: "pause", run_settings: { status: "paused", rate: 2 }, now: 6 });
  assert.equal(m.run.status, "paused");
  assert.equal(m.notice.kind, "info");
});

// --- restore, watchpoints, stable properties, faults, compare ---------------------------------

function summary(id, extra = {}) {
  return {
    id, run: 1, initiator: "p1", algorithm: "chandy-lamport", epoch: 0, status: "complete", reason: null,
    started_at: null, finished_at: null, duration: 0.1,
    reported: { processes: 3, processes_total: 3, channels: 3, channels_total: 3 },
    verdict: { consistent: true, conserved: true, expected_total: 300, recorded_total: 300, problems: [] },
    verdict_text: "consistent", properties: null, watchpoint: null, trigger: null, ...extra,
  };
}

const RESTORE = { id: 4, run: 1, snapshot: 2, epoch: 1, at: "2025-01-01T00:00:00+00:00", replayed_messages: 2, dropped_frames: 5 };

test("the state's channel contents, restores, watchpoints and first holdings are shown", () => {
  const m = apply(
    emptyModel(),
    state({
      in_flight: { "p1→p2": [[1, { amount: 5 }]] },
      restores: [RESTORE],
      watchpoints: [{ id: 3, process: null, condition: "balance < 10", mode: "once", hits: 0, enabled: true }],
      first_holding: { termination: 2 },
      fault_counts: { retransmissions: { "p1→p2": 4 }, lost: { "p1→p2": 1 } },
    }),
  );
  assert.deepEqual(m.channels["p1→p2"].messages, { 1: { amount: 5 } });
  assert.equal(m.restores[0].snapshot, 2);
  assert.equal(m.watchpoints[0].condition, "balance < 10");
  assert.deepEqual(m.firstHolding, { termination: 2 });
  assert.equal(m.faultCounts.retransmissions["p1→p2"], 4);
});

test("a restore frame shows the restore and makes the page start over in the new epoch", () => {
  let m = apply(
    emptyModel(),
    state(),
    delta("a", 5, {
      processes: { p1: { sent: { p2: 9 } } },
      messages: [["p1", "p2", 9, { amount: 1 }]],
      snapshot_events: [{ kind: "marker_send", process: "p1", peer: "p2", seq: 8, snapshot: 1 }],
    }),
  );
  assert.equal(m.markers.length, 1);
  m = apply(m, { type: "restore", run: 1, restore: RESTORE, now: 7 });
  assert.equal(m.stream.reload, true);
  assert.match(m.stream.reason, /restored from snapshot #2/);
  assert.equal(m.banner.id, 4);
  assert.match(m.notice.text, /restored from snapshot #2 \(epoch 1\): 2 recorded messages re-entered their channels/);
  // The reloaded state is of epoch 1: the recorded messages are back in their channel,
  // renumbered, and nothing of the old epoch's messages or markers is left.
  const restored = state({ run: { ...state().run, epoch: 1 }, restores: [RESTORE], in_flight: { "p3→p1": [[4, { amount: 30 }]] } });
  restored.processes[2].sent = { p1: 4 };
  restored.processes[0].applied = { p3: 3 };
  m = apply(m, restored);
  assert.equal(m.stream.reload, false);
  assert.deepEqual(m.channels["p1→p2"].messages, {});
  assert.deepEqual(m.channels["p3→p1"].messages, { 4: { amount: 30 } });
  assert.equal(inFlight(m, m.channels["p3→p1"]), 1);
  assert.deepEqual(m.markers, []);
  assert.equal(m.banner.id, 4);
  const rows = historyRows(apply(m, { type: "reply", command: "snapshot", snapshot: summary(9, { status: "running", epoch: 1 }) }));
  assert.deepEqual(rows.map((r) => r.kind), ["snapshot", "restore"]);
});

test("a page that missed the restore learns of it from a delta or a heartbeat", () => {
  let m = apply(emptyModel(), state(), delta("a", 5, { epoch: 1, processes: { p1: { state: { balance: 1 } } } }));
  assert.equal(m.stream.reload, true);
  assert.equal(m.processes.p1.state.balance, 100);
  m = apply(emptyModel(), state(), { type: "heartbeat", cursors: {}, run_settings: { status: "running", rate: 2, epoch: 1, faults: {} } });
  assert.equal(m.stream.reload, true);
  assert.equal(m.run.epoch, 0);
});

test("a delta of an older epoch counts for its source but changes no process", () => {
  const fresh = state({ run: { ...state().run, epoch: 2 } });
  const m = apply(
    emptyModel(),
    fresh,
    delta("a", 5, { epoch: 1, processes: { p1: { state: { balance: 1 } } }, snapshot_events: [{ kind: "finished", snapshot: summary(3) }] }),
    delta("a", 6, { epoch: 2, processes: { p1: { state: { balance: 70 } } } }),
  );
  assert.equal(m.stream.reload, false);
  assert.equal(m.processes.p1.state.balance, 70);
  assert.equal(m.snapshots[3].status, "complete"); // a finished snapshot is news in any epoch
});

test("a watchpoint hit marks its process and opens the snapshot it started", () => {
  let m = apply(
    emptyModel(),
    state({ watchpoints: [{ id: 3, process: "p2", condition: "balance < 10", mode: "once", algorithm: "lai-yang", hits: 0, enabled: true }] }),
    delta("a", 5, {
      t: 1700000000,
      snapshot_events: [
        { kind: "watchpoint", process: "p2", watchpoint: 3, snapshot: 11, detail: "balance = 7" },
        { kind: "initiate", process: "p2", snapshot: 11, algorithm: "lai-yang" },
      ],
    }),
  );
  assert.deepEqual(m.hits.p2, { watchpoint: 3, snapshot: 11, detail: "balance = 7", at: "2023-11-14T22:13:20.000Z" });
  assert.equal(m.focus, 11);
  assert.equal(m.snapshots[11].initiator, "p2");
  assert.equal(m.snapshots[11].algorithm, "lai-yang");
  assert.deepEqual(m.snapshots[11].watchpoint, { id: 3, process: "p2", condition: "balance < 10" });
  assert.equal(m.snapshots[11].trigger, "balance = 7");
  assert.deepEqual([m.watchpoints[0].hits, m.watchpoints[0].enabled], [1, false]);
  // The list as the server has it now replaces the page's.
  m = apply(m, { type: "watchpoints", watchpoints: [] });
  assert.deepEqual(m.watchpoints, []);
});

test("a refused watchpoint or fault setting is shown by its form, not as a toast", () => {
  let m = apply(emptyModel(), state(), { type: "error", command: "watch", message: "col 9: unknown name 'balanse'", now: 1 });
  assert.equal(m.errors.watch, "col 9: unknown name 'balanse'");
  assert.equal(m.notice, null);
  m = apply(m, { type: "reply", command: "watch", watchpoint: { id: 1, condition: "balance < 9" }, watchpoints: [{ id: 1 }], now: 2 });
  assert.equal(m.errors.watch, undefined);
  m = apply(m, { type: "reply", command: "faults", channel: "p1→p2", faults: { "p1→p2": { reorder: true } }, run_settings: { status: "running", rate: 2, epoch: 0, faults: { "p1→p2": { reorder: true } } }, now: 3 });
  assert.deepEqual(m.run.faults, { "p1→p2": { reorder: true } });
  assert.match(m.notice.text, /reorder/);
});

test("a non-FIFO channel's messages applied out of order are not in flight", () => {
  const m = apply(
    emptyModel(),
    state(),
    delta("a", 5, { processes: { p1: { sent: { p2: 5 } } }, messages: [["p1", "p2", 4, {}], ["p1", "p2", 5, {}]] }),
    delta("b", 1, { processes: { p2: { applied: { p1: 2 }, above: { p1: [4] } } } }),
  );
  assert.equal(inFlight(m, m.channels["p1→p2"]), 2);
  assert.deepEqual(Object.keys(m.channels["p1→p2"].messages), ["5"]);
});

test("stable properties: the first snapshot in which each held, and a deadlock's cycle", () => {
  const deadlock = { holds: true, detail: "p1 waits for p2, p2 for p1", cycle: ["p1", "p2"] };
  const m = apply(
    emptyModel(),
    state({ first_holding: { deadlock: 6 } }),
    delta("a", 5, {
      snapshot_events: [
        { kind: "finished", snapshot: summary(4, { properties: { deadlock, termination: { holds: false, detail: "" } } }) },
        { kind: "finished", snapshot: summary(7, { properties: { termination: { holds: true, detail: "" } } }) },
      ],
    }),
  );
  assert.deepEqual(m.firstHolding, { deadlock: 4, termination: 7 });
  assert.deepEqual(deadlockCycle(m.snapshots[4]), ["p1", "p2"]);
  assert.deepEqual(deadlockCycle(m.snapshots[7]), []);
  assert.equal(isSound(m.snapshots[4]), true);
  assert.equal(isSound(summary(5, { verdict: { consistent: false, conserved: true, problems: ["x"] } })), false);
  assert.equal(isSound(summary(5, { verdict: { consistent: true, conserved: null, problems: [] } })), true);
});

test("the history puts each restore between the epochs it separates", () => {
  const m = apply(
    emptyModel(),
    state({
      snapshots: [summary(1), summary(2), summary(5, { epoch: 1 }), summary(8, { epoch: 2 })],
      restores: [RESTORE, { ...RESTORE, id: 6, snapshot: 5, epoch: 2 }],
    }),
  );
  const rows = historyRows(m).map((r) => (r.kind === "restore" ? `r${r.restore.epoch}` : r.snapshot.id));
  assert.deepEqual(rows, [8, "r2", 5, "r1", 2, 1]);
});

test("two snapshots at most are picked to compare", () => {
  let m = apply(emptyModel(), state(), { type: "pick", snapshot: 1 }, { type: "pick", snapshot: 2 }, { type: "pick", snapshot: 3 });
  assert.deepEqual(m.comparePick, [2, 3]);
  m = apply(m, { type: "pick", snapshot: 2 });
  assert.deepEqual(m.comparePick, [3]);
});

// --- the snapshot's events, in happened-before order, a hop at a time ------------------------

// A Chandy–Lamport snapshot from p1 round the one-way ring p1 → p2 → p3 → p1, as the log
// has it: every event with its id and the clock of its process.
function ringSnapshot(id = 7) {
  let n = 0;
  const ev = (kind, process, extra = {}) => ({ kind, process, snapshot: id, clock: {}, event: ++n, ...extra });
  const hop = (src, dst) => [
    ev("marker_receive", dst, { peer: src, seq: 1 }),
  ];
  return [
    ev("initiate", "p1"),
    ev("record", "p1", { state: { balance: 100 } }),
    ev("marker_send", "p1", { peer: "p2", seq: 1 }),
    ev("recording", "p1", { peer: "p3" }),
    ...hop("p1", "p2"),
    ev("record", "p2", { state: { balance: 100 } }),
    ev("channel_closed", "p2", { peer: "p1", count: 0 }),
    ev("marker_send", "p2", { peer: "p3", seq: 1 }),
    ev("local_done", "p2"),
    ...hop("p2", "p3"),
    ev("record", "p3", { state: { balance: 100 } }),
    ev("channel_closed", "p3", { peer: "p2", count: 0 }),
    ev("marker_send", "p3", { peer: "p1", seq: 1 }),
    ev("local_done", "p3"),
    ...hop("p3", "p1"),
    ev("channel_closed", "p1", { peer: "p3", count: 0 }),
    ev("local_done", "p1"),
  ];
}

const SENT = { p1: { sent: { p2: 1 } }, p2: { sent: { p3: 1 } }, p3: { sent: { p1: 1 } } };

function finished(id) {
  return {
    kind: "finished",
    snapshot: {
      id, run: 1, initiator: "p1", status: "complete", reason: null, duration: 0.04,
      reported: { processes: 3, processes_total: 3, channels: 3, channels_total: 3 },
      verdict: { consistent: true, problems: [] }, verdict_text: "consistent",
    },
  };
}

test("a snapshot told all at once is shown going round the ring, one hop at a time", () => {
  // The whole snapshot (40 ms of it) and its finish arrive in one frame, receipts first.
  const events = ringSnapshot();
  const shuffled = [...events.slice(4), ...events.slice(0, 4), finished(7)];
  let m = apply(emptyModel(), state(), delta("a", 5, { processes: SENT, snapshot_events: shuffled }, 1000));
  const hop = m.play.hopMs;
  assert.deepEqual(Object.keys(m.snapshots[7].recorded), ["p1"]); // the initiator first, nobody else yet
  assert.equal(m.snapshots[7].status, "running"); // the finished state is not shown first
  const recordedAt = {};
  for (let now = 1000; now <= 1000 + 4 * hop; now += 10) {
    m = apply(m, { type: "tick", now });
    for (const p of Object.keys(m.snapshots[7].recorded)) recordedAt[p] ??= now;
  }
  assert.deepEqual(recordedAt, { p1: 1000, p2: 1000 + hop, p3: 1000 + 2 * hop });
  // Shown in the log's order, which here is the only causal one.
  assert.deepEqual(m.play.trace.map((e) => e.event), events.map((e) => e.event));
  assert.equal(m.snapshots[7].status, "complete");
  assert.equal(behind(m, 1000 + 4 * hop), 0);
  // Its cut stays on the graph until the person puts it away.
  assert.equal(m.cut, 7);
  m = apply(m, { type: "dismiss-cut" });
  assert.equal(m.cut, null);
});

test("jump to now shows every waiting event at once, still in causal order", () => {
  const events = ringSnapshot();
  let m = apply(emptyModel(), state(), delta("a", 5, { processes: SENT, snapshot_events: [...events.slice(4), ...events.slice(0, 4), finished(7)] }, 0));
  assert.ok(behind(m, 250) === 250);
  m = apply(m, { type: "jump", now: 260 });
  assert.deepEqual(m.play.trace.map((e) => e.event), events.map((e) => e.event));
  assert.equal(m.snapshots[7].status, "complete");
  assert.deepEqual(m.markers, []);
  assert.equal(behind(m, 260), 0);
});

test("an event waits for another process's events its clock says came before it", () => {
  // p3 recorded after hearing of p2's fifth message (clock p2: 5); p2's record came
  // after its fourth, before its fifth: p2's record must be shown first.
  const p2record = { kind: "record", process: "p2", snapshot: 4, clock: { p2: 4 }, event: 10, state: { balance: 1 } };
  const p3record = { kind: "record", process: "p3", snapshot: 4, clock: { p2: 5, p3: 2 }, event: 12, state: { balance: 2 } };
  // p3's frame first, and p2's view not yet at 5: p2's events up to there may still come.
  let m = apply(emptyModel(), state(), delta("b", 1, { processes: { p3: { clock: { p2: 5, p3: 2 } } }, snapshot_events: [p3record] }, 0));
  assert.deepEqual(m.play.trace, []);
  m = apply(m, delta("a", 5, { processes: { p2: { clock: { p2: 5 } } }, snapshot_events: [p2record] }, 5));
  assert.deepEqual(m.play.trace.map((e) => e.event), [10, 12]);
  // An equal count proves nothing (snapshot events do not tick the clock): no wait.
  const p1record = { kind: "record", process: "p1", snapshot: 5, clock: { p1: 3, p2: 5 }, event: 13 };
  const p2marker = { kind: "marker_send", process: "p2", peer: "p3", seq: 9, snapshot: 5, clock: { p2: 5 }, event: 14 };
  m = apply(m, delta("b", 2, { snapshot_events: [p1record] }, 6));
  m = apply(m, delta("a", 6, { snapshot_events: [p2marker] }, 7));
  assert.deepEqual(m.play.trace.map((e) => e.event), [10, 12, 13, 14]);
});

test("the finish of a snapshot waits until its whole cut is shown, a reload shows what it holds", () => {
  const events = ringSnapshot();
  let m = apply(emptyModel(), state(), delta("a", 5, { processes: SENT, snapshot_events: [finished(7), ...events] }, 0));
  assert.equal(m.snapshots[7].status, "running");
  // A reload mid-way: the state holds everything told so far, nothing is left to show.
  const live = { 7: { recorded: { p1: {}, p2: {}, p3: {} }, channels: {} } };
  m = apply(m, state({ snapshots: [{ ...finished(7).snapshot, status: "running", verdict: null }], live, cursors: { a: 5 } }));
  assert.deepEqual(m.play.buffer, []);
  assert.deepEqual(Object.keys(m.snapshots[7].recorded), ["p1", "p2", "p3"]);
});
