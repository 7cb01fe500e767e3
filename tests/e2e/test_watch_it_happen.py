"""A snapshot shown in causal order, a marker hop at a time (issue 10, section 1).

Real Chromium, Daphne, workers and Redis. The page's ``window.cutline.trace`` (the
snapshot events in the order the page showed them, each with its id in the run's event
log) is checked against ``/api/runs/{id}/events/``: no event is shown before one it
depends on — the same process's earlier events, a marker's sending before its receipt,
and another process's events its vector clock has heard of (only application messages
tick the clocks: an event at p depends on an event of q whose ``clock[q]`` is below its
own ``clock[q]``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from cluster.core import topology as topo
from tests.e2e.conftest import LiveServer
from tests.e2e.test_dashboard import js, log_in, open_run, wait

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Event = dict[str, Any]


def trace_of(driver: WebDriver, snapshot: int) -> list[Event]:
    return [e for e in js(driver, "return window.cutline.trace") if e["snapshot"] == snapshot]


def done_everywhere(driver: WebDriver, snapshot: int, processes: int) -> bool:
    """The page has shown every process's local_done of the snapshot, and its finish."""
    done = [e for e in trace_of(driver, snapshot) if e["kind"] == "local_done"]
    status = js(driver, "const s = window.cutline.model.snapshots[arguments[0]]; return s ? s.status : null", snapshot)
    return len(done) == processes and status == "complete"


def logged_events(driver: WebDriver, run: int) -> dict[int, Event]:
    """The run's event log, by id, as the REST API serves it (fetched by the page's session)."""
    body = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(`/api/runs/${arguments[0]}/events/?limit=20000`, {credentials: 'same-origin'})"
        ".then((r) => r.json()).then(done, (e) => done({error: String(e)}));",
        run,
    )
    assert "events" in body, body
    return {e["id"]: e for e in body["events"]}


def delayed_since(driver: WebDriver, run: int, since: float, seconds: float) -> bool:
    """Whether a message sent after ``since`` took at least ``seconds`` to be applied."""
    events = logged_events(driver, run).values()
    sent = {(e["process"], e["peer"], e["seq"]): e["t"] for e in events if e["kind"] == "send" and e["t"] >= since}
    return any(
        e["t"] - sent[(e["peer"], e["process"], e["seq"])] >= seconds
        for e in events
        if e["kind"] == "receive" and (e["peer"], e["process"], e["seq"]) in sent
    )


def depends_on(later: Event, earlier: Event) -> bool:
    """Whether ``earlier`` directly happened before ``later`` (see the module's docstring)."""
    if later["process"] == earlier["process"]:
        return bool(earlier["id"] < later["id"])
    if (
        later["kind"] == "marker_receive"
        and earlier["kind"] == "marker_send"
        and (earlier["process"], earlier["peer"], earlier["seq"]) == (later["peer"], later["process"], later["seq"])
        and earlier.get("snapshot") == later.get("snapshot")
    ):
        return True
    q = earlier["process"]
    return bool(earlier["clock"].get(q, 0) < later["clock"].get(q, 0))


def assert_causal(trace: list[Event], log: dict[int, Event]) -> None:
    """Every event the page showed is in the log, and none before one it depends on."""
    shown = [log[e["event"]] for e in trace]
    for entry, event in zip(trace, shown, strict=True):
        assert (entry["kind"], entry["process"], entry["seq"]) == (event["kind"], event["process"], event.get("seq"))
    for j, later in enumerate(shown):
        for earlier in shown[j + 1 :]:
            assert not depends_on(later, earlier), f"{later} was shown before {earlier}, which it depends on"


def position(trace: list[Event], kind: str, process: str) -> int:
    return next(i for i, e in enumerate(trace) if e["kind"] == kind and e["process"] == process)


def set_hop(driver: WebDriver, ms: int) -> None:
    js(
        driver,
        "const i = document.getElementById('hop-ms'); i.value = arguments[0]; i.dispatchEvent(new Event('change'))",
        ms,
    )


def test_the_marker_goes_round_token_ring_5_one_process_at_a_time(
    browser: WebDriver,
    daphne: LiveServer,
    cluster_workers: Callable[[int], Any],
    make_user: Callable[..., Any],
    artifacts: Path,
) -> None:
    from snapshots import services

    cluster_workers(2)
    ring = services.import_topology(topo.ring(5, workload="token", name="token-ring-5"))
    run = services.start_run(ring, rate=5.0)
    make_user("olga", "operator")
    log_in(browser, daphne.url, "olga")
    open_run(browser, daphne, run)
    set_hop(browser, 800)

    js(browser, "window.cutline.send({command: 'snapshot', process: 'p1', algorithm: 'chandy-lamport'})")
    snapshot = wait(browser, "the snapshot", lambda d: js(d, "return Object.keys(window.cutline.model.snapshots)"))
    snapshot = int(snapshot[0])
    # The real snapshot is over in a fraction of a second; the page shows a partial cut
    # (some processes recorded, not all) for hops of 0.8 s, never the whole cut at once.
    recorded = "return Object.keys(window.cutline.model.snapshots[arguments[0]].recorded).length"
    behind = "return document.getElementById('behind').textContent"
    wait(
        browser,
        "a partial cut on the page, behind real time",
        lambda d: 2 <= js(d, recorded, snapshot) < 5 and "behind real time" in js(d, behind),
    )
    # The README's picture (docs/watch-it-happen.png): the graph mid-snapshot.
    browser.find_element(By.CSS_SELECTOR, ".graph-card").screenshot(str(artifacts / "watch-it-happen.png"))
    wait(browser, "the whole snapshot shown", lambda d: done_everywhere(d, snapshot, 5))

    trace = trace_of(browser, snapshot)
    assert_causal(trace, logged_events(browser, run.pk))
    records = [e["process"] for e in trace if e["kind"] == "record"]
    assert records == ["p1", "p2", "p3", "p4", "p5"]  # ring order, the initiator first
    for k in range(2, 6):
        arrival = position(trace, "marker_receive", f"p{k}")
        assert trace[arrival]["channel"] == f"p{k - 1}→p{k}"
        assert arrival < position(trace, "record", f"p{k}")
        closed = next(i for i, e in enumerate(trace) if e["kind"] == "channel_closed" and e["process"] == f"p{k}")
        assert arrival <= closed
    # The cut stays on the graph once the snapshot is over, until dismissed.
    assert js(browser, "return window.cutline.model.cut") == snapshot
    assert "[" in js(browser, "return window.cutline.cy.getElementById('p3').data('label')")
    js(browser, "document.getElementById('dismiss-cut').click()")
    wait(browser, "the cut put away", lambda d: js(d, "return window.cutline.model.cut") is None)

    # A page reloaded while a snapshot runs (channels slowed to 1.5 s) picks up where it is.
    changed_at = time.time()
    services.set_channel_faults(run, {f"p{i}→p{i % 5 + 1}": {"delay_ms": 1500} for i in range(1, 6)})
    wait(browser, "the delays in force", lambda d: js(d, "return window.cutline.model.run.faults['p1→p2']") is not None)
    # The page learns of the change from the run's meta as the workers do, each on its own
    # read: only a message the workers really held back says the markers will be too.
    wait(browser, "a message held back by the workers", lambda d: delayed_since(d, run.pk, changed_at, 1.5))
    js(browser, "window.cutline.send({command: 'snapshot', process: 'p1', algorithm: 'chandy-lamport'})")
    second = wait(
        browser,
        "the second snapshot recorded at p2",
        lambda d: next(
            (
                e["snapshot"]
                for e in js(d, "return window.cutline.trace")
                if e["kind"] == "record" and e["process"] == "p2" and e["snapshot"] != snapshot
            ),
            None,
        ),
    )
    browser.refresh()
    wait(
        browser,
        "the socket to be live again",
        lambda d: js(d, "return window.cutline.model.connection.status") == "live",
    )
    status = "const s = window.cutline.model.snapshots[arguments[0]]; return s ? s.status : null"
    wait(browser, "the rest of the snapshot shown", lambda d: js(d, status, second) == "complete")
    after = trace_of(browser, second)
    assert_causal(after, logged_events(browser, run.pk))
    shown_records = [e["process"] for e in after if e["kind"] == "record"]
    assert shown_records == sorted(shown_records) and "p5" in shown_records
    for process in shown_records:
        if process != "p1":
            assert position(after, "marker_receive", process) < position(after, "record", process)


def test_three_concurrent_snapshots_on_complete_4_are_shown_in_causal_order(
    browser: WebDriver,
    daphne: LiveServer,
    cluster_workers: Callable[[int], Any],
    make_user: Callable[..., Any],
) -> None:
    from snapshots import services

    cluster_workers(2)
    complete = services.import_topology(topo.complete(4, name="complete-4"))
    run = services.start_run(complete, rate=10.0)
    make_user("olga", "operator")
    log_in(browser, daphne.url, "olga")
    open_run(browser, daphne, run)
    for process in ("p1", "p2", "p3"):
        js(
            browser,
            "window.cutline.send({command: 'snapshot', process: arguments[0], algorithm: 'chandy-lamport'})",
            process,
        )
    snapshots = wait(
        browser,
        "three snapshots",
        lambda d: (
            (ids := js(d, "return Object.keys(window.cutline.model.snapshots).map(Number)")) and len(ids) == 3 and ids
        ),
    )
    for snapshot in snapshots:
        wait(browser, f"snapshot {snapshot} shown whole", lambda d, s=snapshot: done_everywhere(d, s, 4))

    trace = js(browser, "return window.cutline.trace")
    assert_causal(trace, logged_events(browser, run.pk))
    for snapshot in snapshots:
        own = [e for e in trace if e["snapshot"] == snapshot]
        initiator = next(e["process"] for e in own if e["kind"] == "initiate")
        assert next(e for e in own if e["kind"] == "record")["process"] == initiator
        for process in {"p1", "p2", "p3", "p4"} - {initiator}:
            assert position(own, "marker_receive", process) < position(own, "record", process)
        # A channel is shown closed only once its marker has arrived.
        for closed in (e for e in own if e["kind"] == "channel_closed"):
            src = closed["channel"].split("→")[0]
            arrival = next(
                i for i, e in enumerate(own) if e["kind"] == "marker_receive" and e["channel"] == closed["channel"]
            )
            assert arrival < own.index(closed), f"{closed} before the marker from {src}"
