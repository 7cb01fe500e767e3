// Everything on the dashboard that is not the graph or the diagram, drawn from the
// model: the run's header, the inspector, the watchpoints, the snapshot panel, the
// history.
//
// Each part is rebuilt as HTML from the model and written only when it differs from
// what is shown, so frames at 20 per second cost little and text being selected or a
// button under the pointer is left alone when nothing there changed.

import {
  ALGORITHMS,
  PROPERTIES,
  behind,
  channelFaults,
  channelId,
  deadlockCycle,
  faultWords,
  historyRows,
  inFlight,
  isSound,
  progress,
  restoreWords,
  runningSnapshots,
  snapshotColour,
  unitValue,
} from "./model.js";

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
  return isSound(snapshot) ? "verdict-good" : "verdict-bad";
}

function algorithmName(name) {
  return ALGORITHMS[name] || name || ALGORITHMS["chandy-lamport"];
}

// An error as the services word it; a condition's error names its column ("col 9: …"),
// so the condition is shown again with a caret under that column.
function pointedError(message, text) {
  if (!message) return "";
  const col = /\bcol(?:umn)? (\d+)/.exec(message);
  let pointer = "";
  if (col && text) {
    const at = Math.max(0, Number(col[1]) - 1);
    pointer = `<pre class="pointer">${esc(text)}\n${" ".repeat(Math.min(at, text.length))}^</pre>`;
  }
  return `${pointer}<p>${esc(message)}</p>`;
}

function watchpointText(w) {
  return w ? `⚑ watchpoint #${esc(w.id)} <code>${esc(w.condition)}</code>` : "";
}

// What a stable property's `holds` (true, false, or null: not applicable) reads as, in
// the server's words (`config.words.holds`, from snapshots/presenter.py).
function holdsWord(words, result) {
  return words.holds[String(result?.holds ?? null)];
}

// --- header ---------------------------------------------------------------------------------

// The playback line under the graph: how far the animation runs behind the run, and
// the finished snapshot whose cut stays on the graph.
export function renderPlayback(model, el, now) {
  const late = behind(model, now);
  const words = late >= 50 ? `animation ${(late / 1000).toFixed(1)} s behind real time` : "";
  if (el.behind.textContent !== words) el.behind.textContent = words;
  el.jump.hidden = late < 50;
  const cut = model.cut !== null ? model.snapshots[model.cut] : null;
  el.cut.hidden = !cut;
  const cutWords = cut ? `showing the cut of snapshot #${cut.id} (${cut.status})` : "";
  if (el.cutWords.textContent !== cutWords) el.cutWords.textContent = cutWords;
  if (document.activeElement !== el.hop && Number(el.hop.value) !== model.play.hopMs) el.hop.value = model.play.hopMs;
}

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
    el.controls.querySelector("#take-snapshot").disabled = !live || status === "stopped" || status === "restoring";
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
  const run = model.run || {};
  const unit = run.unit || run.value_key || "";
  const of = run.expected_total === null || run.expected_total === undefined ? "" : ` of ${run.expected_total}`;
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
      `<span>${esc(unit)} at processes <b>${held}</b>${esc(of)} ` +
      `<span class="muted tip" title="${esc(why)}">(live, not a cut)</span></span>` +
      `<span>duplicates <b>${duplicates}</b> · gaps <b>${gaps}</b></span>` +
      retransmissionText(model) +
      `<span class="muted">frames ${model.frames} · last frame ${lag} after its first change</span>`,
  );
}

function retransmissionText(model) {
  const sum = (counts) => Object.values(counts || {}).reduce((n, v) => n + v, 0);
  const retried = sum(model.faultCounts.retransmissions);
  const lost = sum(model.faultCounts.lost);
  return retried || lost ? `<span>lost <b>${lost}</b> · retransmitted <b>${retried}</b></span>` : "";
}

// --- inspector ------------------------------------------------------------------------------

// The head (title, button) changes only with the selection; the body changes with
// every frame. Kept apart, the button is not replaced under a person's pointer.
export function renderInspector(model, el) {
  const sel = model.selection;
  if (!sel || sel.kind !== "channel") put(el.form, "");
  if (!sel) {
    put(el.head, `<p class="hint">Click a process to see its state, clock and counters, or a channel to see the messages in it and its faults.</p>`);
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
        hitText(model.hits[sel.id]) +
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
  put(el.form, model.permissions.control ? faultsForm(model, c.id) : "");
  const faults = channelFaults(model, c.id);
  const retried = model.faultCounts.retransmissions[c.id] || 0;
  const lost = model.faultCounts.lost[c.id] || 0;
  put(
    el.body,
    `<dl><dt>faults</dt><dd id="channel-faults">${esc(faultWords(faults))}</dd>` +
      (faults.loss || retried || lost ? `<dt>lost · retransmitted</dt><dd>${lost} · ${retried}</dd>` : "") +
      `<dt>in flight</dt><dd>${n}</dd>${snaps}</dl>` +
      (n ? `<p class="hint">Messages in the channel (seq: payload), oldest first:</p>` : `<p class="hint">The channel is empty.</p>`) +
      list +
      note,
  );
}

function hitText(hit) {
  if (!hit) return "";
  return `<dt>watchpoint hit</dt><dd>#${esc(hit.watchpoint)} → snapshot #${esc(hit.snapshot)}: ${esc(hit.detail)}</dd>`;
}

// The channel's fault settings as a form; rebuilt only when the channel, its settings or
// the error change, so what a person is typing stays.
function faultsForm(model, id) {
  const f = channelFaults(model, id);
  return (
    `<form id="faults-form" class="faults-form" data-channel="${esc(id)}">` +
    `<h4>Faults <span class="hint">applied where frames leave ${esc(id.split("→")[0])}</span></h4>` +
    `<label class="compact">delay <input name="delay_ms" type="number" min="0" max="10000" step="1" value="${esc(f.delay_ms || 0)}"> ms</label>` +
    `<label class="compact"><input name="reorder" type="checkbox"${f.reorder ? " checked" : ""}> reorder (not FIFO)</label>` +
    `<label class="compact">loss <input name="loss" type="number" min="0" max="0.9" step="0.05" value="${esc(f.loss || 0)}"></label>` +
    `<div class="row"><button type="submit" id="faults-save">Set faults</button>` +
    `<button type="button" id="faults-plain">Plain channel</button></div>` +
    `<div class="form-error" id="faults-error" role="alert">${esc(model.errors.faults || "")}</div>` +
    `</form>`
  );
}

// --- watchpoints ----------------------------------------------------------------------------

export function renderWatchpoints(model, el, conditionText) {
  if (!el.list) return;
  if (el.hint && model.run) {
    put(el.hint, `names here: ${(model.run.known_names || []).map((n) => `<code>${esc(n)}</code>`).join(" ")}`);
  }
  if (el.process && el.process.options.length !== model.order.length + 1) {
    el.process.innerHTML =
      `<option value="">any process</option>` + model.order.map((n) => `<option value="${esc(n)}">${esc(n)}</option>`).join("");
  }
  if (el.error) put(el.error, pointedError(model.errors.watch, conditionText));
  const rows = model.watchpoints.map((w) => {
    const remove = model.permissions.control
      ? `<button type="button" class="danger small" data-unwatch="${w.id}" title="remove watchpoint #${w.id}">✕</button>`
      : "";
    const mode = w.mode === "every" ? `every (≥ ${esc(w.cooldown_s)} s apart)` : "once";
    return (
      `<tr data-watchpoint="${w.id}"${w.enabled ? "" : ' class="spent"'}><td>#${w.id}</td>` +
      `<td><code>${esc(w.condition)}</code><div class="hint">at ${esc(w.process || "any process")} · ${mode} · ${esc(algorithmName(w.algorithm))}${w.enabled ? "" : " · done"}</div></td>` +
      `<td class="num">${esc(w.hits)}</td><td class="mono">${clockTime(w.last_hit_at)}</td><td>${remove}</td></tr>`
    );
  });
  put(el.list, rows.join("") || `<tr><td colspan="5" class="hint">No watchpoints.</td></tr>`);
}

// --- restore banner -------------------------------------------------------------------------

export function renderBanner(model, el) {
  if (!el) return;
  const r = model.banner;
  el.hidden = !r;
  put(el, r ? `<span>↺ Run ${esc(restoreWords(r))}.</span><button type="button" class="link" data-dismiss-banner>dismiss</button>` : "");
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
  put(el.title, `${swatch(focus.id)}#${focus.id} from ${esc(focus.initiator)} · ${esc(algorithmName(focus.algorithm))} · <a href="${config.detail.replace("/0/", `/${focus.id}/`)}">details</a> · <a href="${config.export.replace("/0/", `/${focus.id}/`)}?download=1">export JSON</a>`);
  el.verdict.className = `verdict ${verdictClass(focus)}`;
  put(el.verdict, focus.status === "running" ? "" : esc(focus.verdict_text));
  const restore = model.permissions.control && isSound(focus) && model.run && model.run.status !== "stopped"
    ? `<button type="button" class="restore" data-restore="${focus.id}">↺ Restore the run from #${focus.id}</button>`
    : "";
  put(el.actions, restore + triggerText(focus));
  // Every problem an inconsistent verdict names, in its words: they are the lesson.
  const problems = focus.verdict && focus.verdict.problems.length
    ? `<h3>Problems</h3><ul class="problems" id="problems">${focus.verdict.problems.map((p) => `<li>${esc(p)}</li>`).join("")}</ul>`
    : focus.status === "failed" && focus.reason ? `<p class="problems" id="problems">${esc(focus.reason)}</p>` : "";
  put(el.recorded, problems + propertiesTable(model, focus, config.words) + recordedTables(model, focus));
}

function triggerText(snap) {
  if (!snap.watchpoint && !snap.trigger) return "";
  return `<p class="trigger">Taken by ${esc(snap.initiator)} itself: ${watchpointText(snap.watchpoint) || "a watchpoint"}` +
    (snap.trigger ? ` saw <span class="mono">${esc(snap.trigger)}</span>` : "") + `</p>`;
}

function propertiesTable(model, snap, words) {
  if (!snap.properties) return "";
  const rows = PROPERTIES.filter((name) => snap.properties[name]).map((name) => {
    const result = snap.properties[name];
    const word = holdsWord(words, result);
    const first = model.firstHolding[name] === snap.id ? ` <span class="badge">first held here</span>` : "";
    const cycle = name === "deadlock" && deadlockCycle(snap).length
      ? `<div class="mono cycle">${deadlockCycle(snap).map(esc).join(" → ")} → ${esc(deadlockCycle(snap)[0])} <span class="hint">(red on the graph)</span></div>`
      : "";
    return `<tr data-property="${name}"><td>${name}</td><td><span class="holds holds-${word.replace(/\./g, "")}">${word}</span>${first}</td><td>${esc(result.detail)}${cycle}</td></tr>`;
  });
  return `<h3>Stable properties</h3><table class="table" id="properties"><thead><tr><th>Property</th><th>Holds</th><th>Detail</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
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

export function renderHistory(model, el, config) {
  const h = model.history;
  const d = h.duration;
  put(
    el.summary,
    `<span>running <b>${h.counts.running}</b></span><span>complete <b>${h.counts.complete}</b></span>` +
      `<span>failed <b>${h.counts.failed}</b></span>` +
      `<span>duration min <b>${seconds(d.min)}</b> · avg <b>${seconds(d.count ? d.sum / d.count : null)}</b> · max <b>${seconds(d.max)}</b></span>` +
      (model.restores.length ? `<span>restores <b>${model.restores.length}</b></span>` : ""),
  );
  if (el.compare) {
    const [a, b] = [...model.comparePick].sort((x, y) => x - y);
    const ready = model.comparePick.length === 2;
    put(
      el.compare,
      ready
        ? `<a class="button" id="compare-go" href="${config.compare}?a=${a}&b=${b}">Compare #${a} and #${b}</a>`
        : `<span class="hint">Tick two complete snapshots to compare them${model.comparePick.length ? ` (#${model.comparePick[0]} ticked)` : ""}.</span>`,
    );
  }
  const rows = historyRows(model).map((row) =>
    row.kind === "restore" ? restoreRow(row.restore) : snapshotRow(model, row.snapshot, config.words),
  );
  put(el.body, rows.join("") || `<tr><td colspan="10" class="hint">No snapshots yet.</td></tr>`);
}

function restoreRow(r) {
  return (
    `<tr class="restore-row" data-restore-row="${r.id}"><td colspan="10">↺ <b>${esc(restoreWords(r))}</b>` +
    ` <span class="muted">· ${clockTime(r.at)}${r.dropped_frames ? ` · ${r.dropped_frames} frames in flight then dropped` : ""}</span></td></tr>`
  );
}

function snapshotRow(model, s, words) {
  const p = progress(model, s);
  const trigger = s.watchpoint || s.trigger
    ? `<div class="hint">${watchpointText(s.watchpoint) || "⚑ a watchpoint"}${s.trigger ? `: <span class="mono">${esc(s.trigger)}</span>` : ""}</div>`
    : "";
  const pick = s.status === "complete"
    ? `<label class="compact" title="compare"><input type="checkbox" data-pick="${s.id}"${model.comparePick.includes(s.id) ? " checked" : ""}> compare</label>`
    : "";
  const restore = model.permissions.control && isSound(s) && model.run && model.run.status !== "stopped"
    ? ` <button type="button" class="small restore" data-restore="${s.id}" title="restore the run from #${s.id}">↺ Restore</button>`
    : "";
  return (
    `<tr data-snapshot="${s.id}"${s.id === model.focus ? ' class="selected"' : ""}>` +
    `<td>${swatch(s.id)}${s.id}</td><td>${esc(s.initiator)}${trigger}</td>` +
    `<td>${esc(algorithmName(s.algorithm))}</td>` +
    `<td><span class="status status-${esc(s.status)}">${esc(s.status)}</span></td>` +
    `<td class="mono">${p.processes}/${p.processesTotal} · ${p.channels}/${p.channelsTotal}</td>` +
    `<td class="mono">${clockTime(s.started_at)}</td><td class="num">${seconds(s.duration)}</td>` +
    `<td class="${verdictClass(s)}">${esc(s.status === "running" ? "" : s.verdict_text)}</td>` +
    `<td>${propertyChips(model, s, words)}</td><td class="actions">${pick}${restore}</td></tr>`
  );
}

// One chip per property: what it is, whether it held, and a star where it first did.
function propertyChips(model, s, words) {
  if (!s.properties) return "";
  return PROPERTIES.filter((name) => s.properties[name])
    .map((name) => {
      const result = s.properties[name];
      const word = holdsWord(words, result);
      const first = model.firstHolding[name] === s.id;
      const mark = result.holds === true ? "✓" : result.holds === false ? "✗" : word;
      return (
        `<span class="chip-prop prop-${name} holds-${word.replace(/\./g, "")}${first ? " first" : ""}" title="${esc(result.detail)}">` +
        `${name} ${mark}${first ? " ★ first held" : ""}</span>`
      );
    })
    .join(" ");
}
