// The dashboard's model (static/cutline/js/model.js) without a browser: the stream's
// sequence rules, snapshot progress, and markers. Run by `node --test tests/e2e/js/model.test.js`
// (and from pytest by tests/e2e/test_model_js.py).

import assert from "node:assert/strict";
import { test } from "node:test";

import { applyEvent, emptyModel, inFlight, progress } from "../../../static/cutline/js/model.js";

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
    run: { id: 1, topology: "ring3", workload: "bank", unit: "balance", status: "running", rate: 2, expected_total: 300 },
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
  assert.equal(m.snapshots[3].verdict_text, "consistent · 300 of 300 conserved · 0 problems");
  assert.deepEqual(m.history.counts, { running: 0, complete: 1, failed: 0 });
  assert.deepEqual(m.history.duration, { count: 1, sum: 0.25, min: 0.25, max: 0.25 });
  assert.equal(m.snapshots[3].needsExport, true);
});

test("a marker travels until its receiver has applied it, whichever frame comes first", () => {
  let m = apply(
    emptyModel(),
    state(),
    delta("a", 5, { snapshot_events: [{ kind: "marker_send", process: "p1", peer: "p2", seq: 1, snapshot: 3 }] }, 100),
  );
  assert.equal(m.markers.length, 1);
  assert.equal(m.markers[0].receivedAt, null);
  m = apply(m, delta("a", 6, { snapshot_events: [{ kind: "marker_receive", process: "p2", peer: "p1", seq: 1, snapshot: 3 }] }, 250));
  assert.equal(m.markers[0].receivedAt, 250);
  // The receiver's worker published first: its applied seq already covers the marker.
  m = apply(
    emptyModel(),
    state(),
    delta("b", 1, { processes: { p3: { applied: { p2: 1 } } } }, 10),
    delta("a", 5, { snapshot_events: [{ kind: "marker_send", process: "p2", peer: "p3", seq: 1, snapshot: 3 }] }, 20),
  );
  assert.equal(m.markers[0].receivedAt, 20);
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
