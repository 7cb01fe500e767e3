// Everything on the dashboard that is not the graph or the diagram, drawn from the
// model: the run's header, the inspector, the snapshot panel, the history.
//
// Each part is rebuilt as HTML from the model and written only when it differs from
// what is shown, so frames at 20 per second cost little and text being selected or a
// button under the pointer is left alone when nothing there changed.

import { channelId, inFlight, progress, runningSnapshots, snapshotColour, unitValue } from "./model.js";

const written = new WeakMap();
const NOTICE_MS = 6000;

function put(element, html) {
  if (!element || written.get(element) === html) return;
  written.set(element, html);
  element.innerHTML = html;
}

export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function payloadText(payload) {
  if (payload === null || payload === undefined) return "";
  if (typeof payload !== "object") return esc(payload);
  return Object.entries(payload).map(([k, v]) => `${esc(k)} ${esc(v)}`).join(", ");
}

function stateText(state) {
  return state ? Object.entries(state).map(([k, v]) => `${esc(k)} ${esc(v)}`).join(", ") : "…";
}

function mapText(map, fmt) {
  const entries = Object.entries(map || {});
  return entries.length ? entries.map(([k, v]) => fmt(esc(k), esc(v))).join(" ") : "—";
}

function fifoText(fifo) {
  const parts = Object.entries(fifo || {}).map(
    ([src, f]) => `${esc(src)}→: ${f.duplicates}/${f.gaps}/${f.reorders}/${f.held}`,
  );
  return parts.length ? parts.join(" · ") : "—";
}

function seconds(value) {
  if (value === null || value === undefined) return "—";
  return value < 10 ? `${value.toFixed(3)} s` : `${value.toFixed(1)} s`;
}

function clockTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function swatch(id) {
  return `<span class="swatch" style="background:${snapshotColour(id)}"></span>`;
}

export function verdictClass(snapshot) {
  if (snapshot.status === "running") return "verdict-running";
  const v = snapshot.verdict;
  return v && v.consistent && v.conserved && snapshot.status === "complete" ? "verdict-good" : "verdict-bad";
}

// --- header ---------------------------------------------------------------------------------

export function renderHeader(model, el, now) {
  if (model.run) {
    el.status.className = `status status-${model.run.status}`;
    el.status.textContent = model.run.status;
    el.rateText.textContent = `${model.run.rate} steps/s per process`;
    if (el.rate && document.activeElement !== el.rate && !el.rate.value) el.rate.value = model.run.rate;
  }
  const c = model.connection;
  const words = {
    live: "live",
    connecting: "connecting…",
    reloading: "reloading the state…",
    disconnected: `disconnected${c.message ? ` — ${c.message}` : ""}`,
    refused: `not allowed${c.message ? ` — ${c.message}` : ""}`,
  };
  el.connection.className = `connection ${c.status}`;
  el.connection.textContent = words[c.status] || c.status;
  if (el.controls) {
    const status = model.run ? model.run.status : null;
    const live = c.status === "live";
    el.controls.querySelector("#btn-start").disabled = !live || status === "running" || status === "stopped";
    el.controls.querySelector("#btn-pause").disabled = !live || status !== "running";
    el.controls.querySelector("#btn-stop").disabled = !live || status === "stopped";
    el.controls.querySelector("#take-snapshot").disabled = !live || status === "stopped";
  }
  // Confirmations fade after a few seconds; errors stay until clicked away.
  const stale = model.notice && model.notice.kind === "info" && now - model.notice.at > NOTICE_MS;
  if (model.notice && !stale) {
    el.notice.hidden = false;
    el.notice.className = `notice ${model.notice.kind}`;
    el.notice.textContent = model.notice.text;
  } else {
    el.notice.hidden = true;
  }
  if (el.initiator && el.initiator.options.length !== model.order.length) {
    el.initiator.innerHTML = model.order.map((n) => `<option value="${esc(n)}">${esc(n)}</option>`).join("");
  }
}

export function renderTotals(model, el) {
  let sent = 0;
  let applied = 0;
  let held = 0;
  let duplicates = 0;
  let gaps = 0;
  for (const p of Object.values(model.processes)) {
    sent += p.counters.messages_sent;
    applied += p.counters.messages_applied;
    held += unitValue(model, p);
    for (const f of Object.values(p.fifo || {})) {
      duplicates += f.duplicates;
      gaps += f.gaps;
    }
  }
  const unit = model.run ? model.run.unit : "";
  const lag = model.lag === null || model.lag > 60 ? "—" : `${Math.round(model.lag * 1000)} ms`;
  const flying = Object.values(model.channels).reduce((n, c) => n + inFlight(model, c), 0);
  // Each worker reports its own processes, a moment apart from the others: live totals
  // are not a consistent cut and need not add up. Saying so is the point of the tool.
  const why =
    "Live values come from each worker separately, a moment apart, so together they need not add up: " +
    "a receive may show before its send. A snapshot's recorded state always adds up.";
  put(
    el,
    `<span>messages sent <b>${sent}</b></span><span>applied <b>${applied}</b></span>` +
      `<span>in flight <b>${flying}</b></span>` +
      `<span>${esc(unit)} at processes <b>${held}</b> of ${model.run ? model.run.expected_total : "?"} ` +
      `<span class="muted tip" title="${esc(why)}">(live, not a cut)</span></span>` +
      `<span>duplicates <b>${duplicates}</b> · gaps <b>${gaps}</b></span>` +
      `<span class="muted">frames ${model.frames} · last frame ${lag} after its first change</span>`,
  );
}

// --- inspector ------------------------------------------------------------------------------

// The head (title, button) changes only with the selection; the body changes with
// every frame. Kept apart, the button is not replaced under a person's pointer.
export function renderInspector(model, el) {
  const sel = model.selection;
  if (!sel) {
    put(el.head, `<p class="hint">Click a process to see its state, clock and counters, or a channel to see the messages in it.</p>`);
    put(el.body, "");
    return;
  }
  if (sel.kind === "process") {
    const p = model.processes[sel.id];
    if (!p) return put(el.body, "");
    const recordedIn = Object.values(model.snapshots)
      .filter((s) => sel.id in s.recorded || (s.export && s.export.processes.some((r) => r.process === sel.id)))
      .sort((a, b) => b.id - a.id)
      .slice(0, 6);
    const button = model.permissions.control
      ? `<button type="button" class="primary" data-snapshot-from="${esc(sel.id)}">Take snapshot from ${esc(sel.id)}</button>`
      : "";
    put(el.head, `<h3>Process ${esc(sel.id)}</h3>${button}`);
    put(
      el.body,
      `<dl>` +
        `<dt>state</dt><dd>${stateText(p.state)}</dd>` +
        `<dt>vector clock</dt><dd>${mapText(p.clock, (k, v) => `${k}:${v}`)}</dd>` +
        `<dt>last seq sent</dt><dd>${mapText(p.sent, (k, v) => `→${k}:${v}`)}</dd>` +
        `<dt>last seq applied</dt><dd>${mapText(p.applied, (k, v) => `${k}→:${v}`)}</dd>` +
        Object.entries(p.counters).map(([k, v]) => `<dt>${esc(k.replace("_", " "))}</dt><dd>${esc(v)}</dd>`).join("") +
        `<dt>FIFO in (dup/gap/reorder/held)</dt><dd>${fifoText(p.fifo)}</dd>` +
        `<dt>recorded in</dt><dd>${recordedIn.length ? recordedIn.map((s) => `${swatch(s.id)}#${s.id}`).join(" ") : "—"}</dd>` +
        `</dl>`,
    );
    return;
  }
  const c = model.channels[sel.id];
  if (!c) return put(el.body, "");
  const n = inFlight(model, c);
  const known = Object.entries(c.messages).sort((a, b) => Number(a[0]) - Number(b[0]));
  const list = known.length
    ? `<ol>${known.map(([seq, payload]) => `<li value="${esc(seq)}">seq ${esc(seq)}: ${payloadText(payload)}</li>`).join("")}</ol>`
    : "";
  const note =
    known.length < n
      ? `<p class="hint">Payloads shown for ${known.length} of ${n}: pages are sent only the newest few messages of each channel per frame.</p>`
      : "";
  const snaps = [...runningSnapshots(model), model.snapshots[model.focus]]
    .filter((s, i, all) => s && all.indexOf(s) === i)
    .map((s) => {
      const state = s.channels[c.id];
      const recorded = s.export ? s.export.channels.find((r) => channelId(r.src, r.dst) === c.id) : null;
      if (recorded) return `<dt>${swatch(s.id)}#${s.id}</dt><dd>recorded ${recorded.messages.length}: ${recorded.messages.map((m) => `${m.seq}: ${payloadText(m.payload)}`).join(" · ") || "empty"}</dd>`;
      if (!state) return `<dt>${swatch(s.id)}#${s.id}</dt><dd>not recording yet</dd>`;
      if (state.status === "recording") return `<dt>${swatch(s.id)}#${s.id}</dt><dd>recording · ${state.count || 0} so far</dd>`;
      return `<dt>${swatch(s.id)}#${s.id}</dt><dd>recorded ${state.count ?? 0}: ${(state.messages || []).map(([seq, p]) => `${seq}: ${payloadText(p)}`).join(" · ") || "empty"}</dd>`;
    })
    .join("");
  put(el.head, `<h3>Channel ${esc(c.id)}</h3>`);
  put(
    el.body,
    `<dl><dt>in flight</dt><dd>${n}</dd>${snaps}</dl>` +
      (n ? `<p class="hint">Messages in the channel (seq: payload), oldest first:</p>` : `<p class="hint">The channel is empty.</p>`) +
      list +
      note,
  );
}

// --- snapshot panel -------------------------------------------------------------------------

function bar(label, done, total, colour) {
  const pct = total ? Math.round((100 * done) / total) : 0;
  return `<span>${label}</span><span class="bar"><span style="width:${pct}%;background:${colour}"></span></span><span class="num">${done}/${total}</span>`;
}

export function renderSnapshotPanel(model, el, config) {
  const focus = model.snapshots[model.focus];
  const running = runningSnapshots(model);
  const shown = [...running];
  if (focus && !shown.includes(focus)) shown.unshift(focus);
  put(
    el.progress,
    shown
      .map((s) => {
        const p = progress(model, s);
        return (
          `<div class="progress" data-snapshot="${s.id}"><div>${swatch(s.id)}<b>#${s.id}</b> from ${esc(s.initiator)} · <span class="status status-${esc(s.status)}">${esc(s.status)}</span></div>` +
          `<div class="bars">${bar("processes", p.processes, p.processesTotal, snapshotColour(s.id))}${bar("channels", p.channels, p.channelsTotal, snapshotColour(s.id))}</div></div>`
        );
      })
      .join(""),
  );
  if (!focus) {
    put(el.title, "— none yet");
    put(el.verdict, "");
    put(el.recorded, `<p class="hint">Take a snapshot to see the recorded global state and its verdict here.</p>`);
    return;
  }
  put(el.title, `${swatch(focus.id)}#${focus.id} from ${esc(focus.initiator)} · <a href="${config.detail.replace("/0/", `/${focus.id}/`)}">details</a> · <a href="${config.export.replace("/0/", `/${focus.id}/`)}?download=1">export JSON</a>`);
  el.verdict.className = `verdict ${verdictClass(focus)}`;
  put(el.verdict, focus.status === "running" ? "" : esc(focus.verdict_text));
  const problems = focus.verdict && focus.verdict.problems.length
    ? `<ul class="problems">${focus.verdict.problems.slice(0, 10).map((p) => `<li>${esc(p)}</li>`).join("")}</ul>`
    : focus.status === "failed" && focus.reason ? `<p class="problems">${esc(focus.reason)}</p>` : "";
  put(el.recorded, problems + recordedTables(model, focus));
}

function recordedTables(model, snap) {
  let processRows;
  let channelRows;
  if (snap.export) {
    processRows = snap.export.processes.map((r) => [r.process, stateText(r.state)]);
    channelRows = snap.export.channels.map((r) => [
      channelId(r.src, r.dst),
      r.messages.length ? r.messages.map((m) => `${m.seq}: ${payloadText(m.payload)}`).join(" · ") : "empty",
    ]);
  } else {
    processRows = Object.entries(snap.recorded).map(([name, state]) => [name, stateText(state)]);
    channelRows = Object.entries(snap.channels).map(([id, c]) => [
      id,
      c.status === "recording"
        ? `recording… ${c.count || 0} so far`
        : (c.messages || []).map(([seq, p]) => `${seq}: ${payloadText(p)}`).join(" · ") || (c.count ? `${c.count} messages` : "empty"),
    ]);
  }
  const table = (head, rows) =>
    `<table class="table"><thead><tr><th>${head[0]}</th><th>${head[1]}</th></tr></thead><tbody>${rows
      .map(([a, b]) => `<tr><td>${esc(a)}</td><td class="mono">${b}</td></tr>`)
      .join("") || `<tr><td colspan="2" class="hint">nothing recorded yet</td></tr>`}</tbody></table>`;
  return (
    `<h3>Recorded global state</h3><div class="recorded-grid">` +
    table(["Process", "Recorded state"], processRows) +
    table(["Channel", "Recorded messages (seq: payload)"], channelRows) +
    `</div>`
  );
}

// --- history --------------------------------------------------------------------------------

export function renderHistory(model, el) {
  const h = model.history;
  const d = h.duration;
  put(
    el.summary,
    `<span>running <b>${h.counts.running}</b></span><span>complete <b>${h.counts.complete}</b></span>` +
      `<span>failed <b>${h.counts.failed}</b></span>` +
      `<span>duration min <b>${seconds(d.min)}</b> · avg <b>${seconds(d.count ? d.sum / d.count : null)}</b> · max <b>${seconds(d.max)}</b></span>`,
  );
  const rows = Object.values(model.snapshots)
    .sort((a, b) => b.id - a.id)
    .map((s) => {
      const p = progress(model, s);
      return (
        `<tr data-snapshot="${s.id}"${s.id === model.focus ? ' class="selected"' : ""}>` +
        `<td>${swatch(s.id)}${s.id}</td><td>${esc(s.initiator)}</td>` +
        `<td><span class="status status-${esc(s.status)}">${esc(s.status)}</span></td>` +
        `<td class="mono">${p.processes}/${p.processesTotal} · ${p.channels}/${p.channelsTotal}</td>` +
        `<td class="mono">${clockTime(s.started_at)}</td><td class="num">${seconds(s.duration)}</td>` +
        `<td class="${verdictClass(s)}">${esc(s.status === "running" ? "" : s.verdict_text)}</td></tr>`
      );
    })
    .join("");
  put(el.body, rows || `<tr><td colspan="7" class="hint">No snapshots yet.</td></tr>`);
}
