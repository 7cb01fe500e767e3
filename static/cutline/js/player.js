// The order and pace in which the page shows a snapshot's events: pure, no DOM, no clock.
//
// Why this exists: each worker publishes what its processes did as one frame every 50 ms
// (snapshots/live/publisher.py), and the frames of different workers reach the page in
// whatever order the network gives. A snapshot over in 40 ms arrives as a frame or two
// holding all of it, and the marker a process received may come before the frame that
// says it was sent. Applied as they come, the page showed the finished cut first and every
// marker at once. So the page keeps the events it is told of here and shows each only
// once every event it depends on has been shown, and a marker's arrival only a hop's time
// after its sending was shown.
//
// "Depends on" is happened-before, from what each event carries (snapshots/live/publisher.py):
//  - the events of one process, in the order that process logged them;
//  - a marker's receipt, on the marker's sending (same channel, same seq);
//  - an event at p, on every event of another process q whose clock[q] is below the
//    event's clock[q]: p has heard of q's next application message, sent after it.
//    (Only application messages tick the vector clocks; snapshot events carry the clock
//    of the last message before them, so an equal count proves nothing and waits for nothing.)
// An event of q the page has not been told of yet may be among those: the page has all of
// q's events up to q's clock in the newest view of q it got (a worker sends a process's
// view and its events in the same frame), so the event waits until q's view has caught up.
//
// A snapshot's "finished" waits until none of its events is left to show and its cut is
// complete on the page (every process recorded, every channel closed), so the verdict
// never comes before the events that lead to it.

export const HOP_MS = 400; // default: how long one marker hop is shown travelling
const FINISH_WAIT_MS = 10000; // a finished snapshot whose cut the page never completes is shown anyway
const TRACE_KEPT = 5000;

export function emptyPlayer(hopMs = HOP_MS) {
  return {
    hopMs,
    buffer: [], // {event, arrivedAt}: told of, not shown yet, in the order told
    sent: {}, // marker key → when its sending was shown (page ms)
    trace: [], // what was shown, in order: {kind, snapshot, process, channel, seq, event}
    shown: 0, // events shown so far (a change counter for the renderer)
  };
}

export function markerKey(snapshot, src, dst, seq) {
  return `${snapshot}|${src}→${dst}|${seq}`;
}

export function enqueue(player, events, now) {
  for (const event of events) player.buffer.push({ event, arrivedAt: now });
}

// How far the animation runs behind: how long the oldest event waiting has waited (ms).
export function behindMs(player, now) {
  return player.buffer.length ? Math.max(0, now - player.buffer[0].arrivedAt) : 0;
}

// The events to show now, in a causal order, taken out of the buffer. `processes` is
// the model's newest view of each process; `isComplete(snapshot)` says whether the page
// shows a snapshot's cut whole. With `all`, no event waits for its time (jump to now).
export function takeReady(player, processes, now, isComplete, all = false) {
  const out = [];
  for (;;) {
    const index = nextReady(player, processes, now, isComplete, all);
    if (index < 0) break;
    const [{ event }] = player.buffer.splice(index, 1);
    if (event.kind === "marker_send") player.sent[markerKey(event.snapshot, event.process, event.peer, event.seq)] = now;
    out.push(event);
  }
  if (all && player.buffer.length) {
    // Only events waiting on news that has not come yet are left: show them as told.
    out.push(...player.buffer.map((b) => b.event));
    player.buffer = [];
  }
  return out;
}

function nextReady(player, processes, now, isComplete, all) {
  // Only the first waiting event of each process can go next: by its id in the log
  // (ids follow each process's own order), or as told if it has none.
  const heads = new Map();
  for (let i = 0; i < player.buffer.length; i++) {
    const e = player.buffer[i].event;
    if (e.process === undefined) continue;
    const head = heads.get(e.process);
    if (head === undefined || earlier(e, player.buffer[head].event)) heads.set(e.process, i);
  }
  for (let i = 0; i < player.buffer.length; i++) {
    const { event, arrivedAt } = player.buffer[i];
    if (event.kind === "finished") {
      if (finishReady(player, event.snapshot, now - arrivedAt, isComplete, all)) return i;
      continue;
    }
    if (heads.get(event.process) !== i) continue;
    if (!clockReady(player, event, heads, processes)) continue;
    if (event.kind === "marker_receive" && !markerReady(player, event, processes, now, all)) continue;
    return i;
  }
  return -1;
}

function earlier(a, b) {
  return a.event != null && b.event != null && a.event < b.event;
}

function clockReady(player, event, heads, processes) {
  for (const [q, count] of Object.entries(event.clock || {})) {
    if (q === event.process || !count) continue;
    const view = processes[q];
    if (view && (view.clock[q] || 0) < count) return false; // q's events up to there are not all here yet
    const head = heads.get(q);
    if (head !== undefined && ((player.buffer[head].event.clock || {})[q] || 0) < count) return false;
  }
  return true;
}

function markerReady(player, event, processes, now, all) {
  const key = markerKey(event.snapshot, event.peer, event.process, event.seq);
  const sentAt = player.sent[key];
  if (sentAt !== undefined) return all || now >= sentAt + player.hopMs;
  const waiting = player.buffer.some(
    (b) => b.event.kind === "marker_send" && markerKey(b.event.snapshot, b.event.process, b.event.peer, b.event.seq) === key,
  );
  if (waiting) return false;
  // Not told of and not shown: if its sender's view has sent it, it was before the state
  // this page started from; otherwise its frame is still on the way.
  const sender = processes[event.peer];
  return !sender || (sender.sent[event.process] || 0) >= event.seq;
}

function finishReady(player, snapshot, waited, isComplete, all) {
  if (player.buffer.some((b) => b.event.kind !== "finished" && b.event.snapshot === snapshot.id)) return false;
  return all || snapshot.status !== "complete" || isComplete(snapshot.id) || waited >= FINISH_WAIT_MS;
}

// The trace entry of a shown event (window.cutline.trace): kinds as in the run's event
// log, `event` its id there (/api/runs/{id}/events/).
export function traced(player, event) {
  let channel = null;
  if (event.peer !== undefined) {
    channel = event.kind === "marker_send" ? `${event.process}→${event.peer}` : `${event.peer}→${event.process}`;
  }
  player.trace.push({
    kind: event.kind,
    snapshot: event.kind === "finished" ? event.snapshot.id : event.snapshot,
    process: event.process ?? null,
    channel,
    seq: event.seq ?? null,
    event: event.event ?? null,
  });
  if (player.trace.length > TRACE_KEPT) player.trace.splice(0, player.trace.length - TRACE_KEPT);
  player.shown += 1;
}
