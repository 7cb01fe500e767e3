"""The dashboard in a real headless Chromium, against Daphne, real workers and Redis.

What a person does: log in, start a run from the Runs page, pause and start it, click a
process, take a snapshot from it, and watch the verdict and the history row appear;
restore the run from a snapshot; add a watchpoint and see the snapshot it takes; make a
channel reorder and take a Lai–Yang snapshot; compare two snapshots.
Every wait is for something on the page (a text, an element, a frame counted by the
page's model), with generous timeouts: the machine may be busy with other tests.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.conftest import PASSWORD, LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TIMEOUT = 90  # seconds for anything the cluster has to do


def wait(driver: WebDriver, what: str, condition: Callable[[WebDriver], Any], timeout: float = TIMEOUT) -> Any:
    # The page redraws parts of itself many times a second: an element found a moment
    # ago may be gone, which only means "look again".
    waiting = WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException])
    return waiting.until(condition, message=f"waiting for {what}")


def text(driver: WebDriver, css: str) -> str:
    """An element's text, read in one step in the page (so it cannot go stale midway)."""
    return str(
        driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css)
    )


def log_in(driver: WebDriver, base: str, username: str) -> None:
    driver.get(f"{base}/accounts/login/?next=/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait(driver, "the Runs page", lambda d: text(d, "h1") == "Topologies")


def click_process(driver: WebDriver, name: str) -> None:
    """Click a process in the Cytoscape canvas, where a person would."""
    graph = driver.find_element(By.ID, "graph")
    x, y = driver.execute_script(
        "const p = window.cutline.cy.getElementById(arguments[0]).renderedPosition(); return [p.x, p.y];", name
    )
    size = graph.size
    ActionChains(driver).move_to_element_with_offset(
        graph, int(x - size["width"] / 2), int(y - size["height"] / 2)
    ).click().perform()


def save_full_page(driver: WebDriver, path: Path) -> None:
    """A screenshot of the whole page, not just the window (through the DevTools protocol)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]  # type: ignore[attr-defined]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def frames_seen(driver: WebDriver) -> int:
    return int(driver.execute_script("return window.cutline.model.frames"))


def test_a_person_takes_a_snapshot_and_sees_it_is_consistent(
    browser: WebDriver,
    daphne: LiveServer,
    cluster_workers: Callable[[int], Any],
    make_user: Callable[..., Any],
    ring3: Any,
    artifacts: Path,
) -> None:
    cluster_workers(2)
    make_user("olga", "operator")
    log_in(browser, daphne.url, "olga")

    # Start a run of ring3 from the Runs page: its dashboard opens, live.
    browser.find_element(By.CSS_SELECTOR, 'tr[data-topology="ring3"] input[name="rate"]').clear()
    browser.find_element(By.CSS_SELECTOR, 'tr[data-topology="ring3"] input[name="rate"]').send_keys("5")
    browser.find_element(By.CSS_SELECTOR, 'tr[data-topology="ring3"] button[type=submit]').click()
    wait(browser, "the socket to be live", lambda d: text(d, "#connection") == "live")
    assert text(browser, "#run-status") == "running"

    # Pause it and start it again, as a person would, from the dashboard's controls.
    browser.find_element(By.ID, "btn-pause").click()
    wait(browser, "the run to be paused", lambda d: text(d, "#run-status") == "paused")
    browser.find_element(By.ID, "btn-start").click()
    wait(browser, "the run to be running", lambda d: text(d, "#run-status") == "running")
    # Messages flow: frames published by the workers reach the page.
    before = frames_seen(browser)
    wait(browser, "frames from the workers", lambda d: frames_seen(d) >= before + 5)
    wait(browser, "messages sent", lambda d: "messages sent 0" not in text(d, "#totals"))

    # Click a process, then take a snapshot from it.
    click_process(browser, "p2")
    wait(browser, "the process panel", lambda d: text(d, "#inspector h3") == "Process p2")
    assert "vector clock" in text(browser, "#inspector")
    browser.find_element(By.CSS_SELECTOR, '#inspector button[data-snapshot-from="p2"]').click()

    # The verdict, in plain words, and the row in the history.
    wait(browser, "the verdict", lambda d: text(d, "#verdict").startswith("consistent · "))
    assert text(browser, "#verdict").endswith("conserved · 0 problems")
    row = wait(browser, "the history row", lambda d: text(d, "#history tbody tr[data-snapshot]"))
    assert "p2" in row and "complete" in row and "3/3 · 6/6" in row
    assert "complete 1" in text(browser, "#history-summary")
    # The recorded global state of all three processes and six channels is shown.
    wait(
        browser,
        "the recorded state",
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recorded .recorded-grid tbody tr")) == 9,
    )
    # And what the detectors found in it: the bank conserves, and neither terminates nor deadlocks.
    wait(browser, "the stable properties", lambda d: "conservation\tyes" in text(d, "#properties"))
    # The space-time diagram draws the snapshot's cut.
    wait(
        browser, "the cut in the space-time diagram", lambda d: d.find_elements(By.CSS_SELECTOR, "#spacetime path.cut")
    )

    # The README's picture is this one (copied to docs/dashboard.png by hand), without
    # the confirmation toast over it: a click puts that away.
    browser.execute_script("document.getElementById('notice').click()")
    wait(browser, "the toast to go", lambda d: not d.find_element(By.ID, "notice").is_displayed())
    save_full_page(browser, artifacts / "dashboard.png")

    # The snapshot's own page shows the same verdict.
    browser.find_element(By.CSS_SELECTOR, "#snapshot-title a").click()
    wait(browser, "the snapshot page", lambda d: text(d, "#verdict").startswith("consistent · "))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#recorded-processes tbody tr")) == 3
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert severe == []


def test_a_viewer_watches_and_is_told_when_a_command_is_refused(
    browser: WebDriver,
    daphne: LiveServer,
    make_user: Callable[..., Any],
    ring3: Any,
) -> None:
    from snapshots import services

    run = services.start_run(ring3, rate=1.0)
    make_user("vera", "viewer")
    log_in(browser, daphne.url, "vera")
    browser.get(f"{daphne.url}/runs/{run.pk}/")
    wait(browser, "the socket to be live", lambda d: text(d, "#connection") == "live")
    assert browser.find_elements(By.ID, "controls") == []  # no buttons for a viewer
    # A command sent anyway (say, from the console) is refused, and the page says why.
    browser.execute_script("window.cutline.send({command: 'stop'})")
    wait(browser, "the refusal", lambda d: "not allowed to control runs" in text(d, "#notice"))
    run.refresh_from_db()
    assert run.status == "running"


def test_the_page_shows_a_lost_connection_and_reconnects_by_itself(
    browser: WebDriver,
    daphne: LiveServer,
    make_user: Callable[..., Any],
    ring3: Any,
) -> None:
    from snapshots import services

    run = services.start_run(ring3, rate=1.0)
    make_user("vera", "viewer")
    log_in(browser, daphne.url, "vera")
    browser.get(f"{daphne.url}/runs/{run.pk}/")
    wait(browser, "the socket to be live", lambda d: text(d, "#connection") == "live")
    daphne.stop()
    wait(browser, "the page to say it is disconnected", lambda d: text(d, "#connection").startswith("disconnected"))
    daphne.start()
    wait(browser, "the page to reconnect by itself", lambda d: text(d, "#connection") == "live")
    assert browser.execute_script("return window.cutline.model.run.id") == run.pk


# --- restore, watchpoints, faults and Lai–Yang, compare ----------------------------------------


def js(driver: WebDriver, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def open_run(driver: WebDriver, server: LiveServer, run: Any) -> None:
    driver.get(f"{server.url}/runs/{run.pk}/")
    wait(driver, "the socket to be live", lambda d: text(d, "#connection") == "live")


def click_channel(driver: WebDriver, channel: str) -> None:
    """Click a channel in the Cytoscape canvas, on its curve."""
    graph = driver.find_element(By.ID, "graph")
    x, y = js(
        driver,
        "const p = window.cutline.cy.getElementById(arguments[0]).renderedMidpoint(); return [p.x, p.y];",
        channel,
    )
    size = graph.size
    ActionChains(driver).move_to_element_with_offset(
        graph, int(x - size["width"] / 2), int(y - size["height"] / 2)
    ).click().perform()


def complete_row(driver: WebDriver, snapshot: int) -> str:
    return text(driver, f'#history tr[data-snapshot="{snapshot}"]')


def take_snapshot(driver: WebDriver, algorithm: str = "chandy-lamport") -> int:
    """Take a snapshot with the header's controls; return its id once it is complete."""
    before = set(js(driver, "return Object.keys(window.cutline.model.snapshots).map(Number)"))
    Select(driver.find_element(By.ID, "algorithm")).select_by_value(algorithm)
    driver.find_element(By.ID, "take-snapshot").click()
    new = wait(
        driver,
        "the new snapshot",
        lambda d: sorted(set(js(d, "return Object.keys(window.cutline.model.snapshots).map(Number)")) - before),
    )[0]
    wait(driver, f"snapshot {new} to complete", lambda d: "complete" in complete_row(d, new))
    return int(new)


def test_an_operator_restores_the_run_from_a_snapshot_and_every_page_starts_over(
    browser: WebDriver,
    daphne: LiveServer,
    cluster_workers: Callable[[int], Any],
    make_user: Callable[..., Any],
    ring3: Any,
    artifacts: Path,
) -> None:
    from snapshots import services
    from snapshots.presenter import snapshot_export

    cluster_workers(2)
    run = services.start_run(ring3, rate=5.0)
    # A slow network: every channel holds messages at the cut, and after the restore the
    # replayed ones stay in their channels long enough to be seen there.
    services.set_channel_faults(run, {f"{s}→{d}": {"delay_ms": 3000} for s, d in run.channel_pairs})
    make_user("olga", "operator")
    log_in(browser, daphne.url, "olga")
    open_run(browser, daphne, run)
    wait(
        browser, "messages in flight", lambda d: js(d, "return Object.keys(window.cutline.model.channels).length") == 6
    )
    snapshot = take_snapshot(browser)
    export = snapshot_export(services.get_run(run.pk).snapshots.get(pk=snapshot))
    recorded = {f"{c['src']}→{c['dst']}": [m["payload"] for m in c["messages"]] for c in export["channels"]}
    total = sum(len(m) for m in recorded.values())
    assert total > 0, "with 3 s of delay some channel must hold messages at the cut"

    # Pause, so that after the restore only the replayed messages move; then restore from
    # the history row, confirming the question the page asks.
    browser.find_element(By.ID, "btn-pause").click()
    wait(browser, "the run to be paused", lambda d: text(d, "#run-status") == "paused")
    browser.find_element(By.CSS_SELECTOR, f'#history button[data-restore="{snapshot}"]').click()
    alert = wait(browser, "the confirmation", lambda d: d.switch_to.alert)
    assert f"Restore run {run.pk} to what snapshot {snapshot} recorded?" in alert.text
    alert.accept()

    words = f"restored from snapshot #{snapshot} (epoch 1): {total} recorded messages re-entered their channels"
    wait(browser, "the banner", lambda d: words in text(d, "#banner"))
    wait(browser, "the page to start over in epoch 1", lambda d: js(d, "return window.cutline.model.run.epoch") == 1)
    assert words in text(browser, "#history tr.restore-row")
    # The recorded messages are back in their channels, in order, as the state shows them.
    shown = js(
        browser,
        "const out = {}; for (const c of Object.values(window.cutline.model.channels)) {"
        " out[c.id] = Object.entries(c.messages).sort((a, b) => a[0] - b[0]).map((e) => e[1]); } return out;",
    )
    assert {k: v for k, v in shown.items() if v} == {k: v for k, v in recorded.items() if v}
    busiest = max(recorded, key=lambda k: len(recorded[k]))
    click_channel(browser, busiest)
    wait(browser, "the channel panel", lambda d: text(d, "#inspector h3") == f"Channel {busiest}")
    assert f"in flight\n{len(recorded[busiest])}" in text(browser, "#inspector-body")
    # And every process is back in its recorded state.
    states = js(
        browser,
        "return Object.fromEntries(Object.entries(window.cutline.model.processes).map(([n, p]) => [n, p.state]))",
    )
    assert states == {p["process"]: p["state"] for p in export["processes"]}
    save_full_page(browser, artifacts / "dashboard-restored.png")
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert severe == []


def test_a_watchpoint_fires_and_the_page_opens_the_snapshot_it_took(
    browser: WebDriver,
    daphne: LiveServer,
    cluster_workers: Callable[[int], Any],
    make_user: Callable[..., Any],
    ring3: Any,
) -> None:
    from snapshots import services

    cluster_workers(2)
    run = services.start_run(ring3, rate=5.0)
    make_user("olga", "operator")
    log_in(browser, daphne.url, "olga")
    open_run(browser, daphne, run)
    assert "balance" in text(browser, "#watch-hint") and "msg.amount" in text(browser, "#watch-hint")

    # A mistake is shown by the form, pointing at where it is.
    condition = browser.find_element(By.ID, "watch-condition")
    condition.send_keys("balanse < 95")
    browser.find_element(By.ID, "watch-add").click()
    wait(browser, "the error", lambda d: "unknown name 'balanse'" in text(d, "#watch-error"))
    assert text(browser, "#watch-error pre.pointer") == "balanse < 95\n^"
    assert not browser.find_element(By.ID, "notice").is_displayed()

    # Fixed: p2's balance changing at all (its first transfer) makes p2 snapshot itself, once.
    condition.clear()
    condition.send_keys("balance != 100")
    Select(browser.find_element(By.ID, "watch-process")).select_by_value("p2")
    browser.find_element(By.ID, "watch-add").click()
    wait(browser, "the watchpoint in the list", lambda d: "balance != 100" in text(d, "#watchpoints tbody"))
    assert text(browser, "#watch-error") == ""

    hit = wait(browser, "the watchpoint to fire", lambda d: js(d, "return window.cutline.model.hits.p2 || null"))
    snapshot = hit["snapshot"]
    # The page opens the snapshot the watchpoint took, marks p2, and says why it was taken.
    assert js(browser, "return window.cutline.model.focus") == snapshot
    assert js(browser, "return window.cutline.cy.getElementById('p2').hasClass('hit')")
    wait(browser, "the snapshot to complete", lambda d: "complete" in complete_row(d, snapshot))
    row = complete_row(browser, snapshot)
    assert "p2" in row and "balance != 100" in row and "balance = " in row
    assert f"#{snapshot} from p2" in text(browser, "#snapshot-title")
    assert "Taken by p2 itself" in text(browser, "#snapshot-actions")
    wait(browser, "the hit counted", lambda d: "done" in text(d, "#watchpoints tr[data-watchpoint]"))
    recorded = services.get_run(run.pk).snapshots.get(pk=snapshot).process_records.get(process="p2")
    assert recorded.state["balance"] != 100  # the state the condition saw

    # Removing it empties the list.
    browser.find_element(By.CSS_SELECTOR, "#watchpoints button[data-unwatch]").click()
    wait(browser, "the list to empty", lambda d: "No watchpoints." in text(d, "#watchpoints tbody"))


def test_reorder_on_a_channel_then_a_lai_yang_snapshot_and_two_snapshots_compared(
    browser: WebDriver,
    daphne: LiveServer,
    cluster_workers: Callable[[int], Any],
    make_user: Callable[..., Any],
    ring3: Any,
    artifacts: Path,
) -> None:
    from snapshots import services

    cluster_workers(2)
    run = services.start_run(ring3, rate=8.0)
    make_user("olga", "operator")
    log_in(browser, daphne.url, "olga")
    open_run(browser, daphne, run)
    first = take_snapshot(browser)

    # Click a channel; its fault form sets it reordering (not FIFO) and a little lossy.
    click_channel(browser, "p1→p2")
    wait(browser, "the channel panel", lambda d: text(d, "#inspector h3") == "Channel p1→p2")
    form = browser.find_element(By.ID, "faults-form")
    form.find_element(By.NAME, "reorder").click()
    loss = form.find_element(By.NAME, "loss")
    loss.clear()
    loss.send_keys("0.3")
    form.find_element(By.ID, "faults-save").click()
    wait(browser, "the faults", lambda d: "reorder (not FIFO), loss 30%" in text(d, "#channel-faults"))
    assert js(browser, "return window.cutline.cy.getElementById('p1→p2').hasClass('reorder')")
    run.refresh_from_db()
    assert run.faults["p1→p2"]["reorder"] is True and run.faults["p1→p2"]["loss"] == 0.3
    wait(
        browser,
        "the loss badge",
        lambda d: "loss 30%" in js(d, "return window.cutline.cy.getElementById('p1→p2').data('badge')"),
    )
    # The form's inputs keep settings in range; one sent anyway is refused, and the form
    # shows the reason.
    js(browser, "window.cutline.send({command: 'faults', channel: 'p1→p2', faults: {loss: 2}})")
    wait(browser, "the refusal", lambda d: "loss" in text(d, "#faults-error"))

    # Lai–Yang does not need FIFO channels: its snapshot is consistent.
    second = take_snapshot(browser, "lai-yang")
    row = complete_row(browser, second)
    assert "Lai–Yang" in row and "consistent ·" in row and "inconsistent" not in row
    save_full_page(browser, artifacts / "dashboard-faults.png")

    # Tick both in the history and compare them. (Clicked in the page in one step: the
    # history is redrawn as snapshots progress, and an element found a moment ago may be gone.)
    for snapshot in (first, second):
        js(browser, "document.querySelector(arguments[0]).click()", f'#history input[data-pick="{snapshot}"]')
    wait(browser, "the compare link", lambda d: text(d, "#compare-go") == f"Compare #{first} and #{second}")
    js(browser, "document.getElementById('compare-go').click()")
    wait(browser, "the compare page", lambda d: text(d, "h1").startswith("Compare snapshots"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#compare-channels tbody tr")) == 6
    assert browser.find_elements(By.CSS_SELECTOR, "#compare-processes tbody tr[data-process]")
    assert "changed" in text(browser, "#processes-changed")
    save_full_page(browser, artifacts / "compare.png")


def test_a_snapshots_deadlock_is_drawn_on_the_graph_and_an_inconsistent_verdict_lists_its_problems(
    browser: WebDriver,
    daphne: LiveServer,
    make_user: Callable[..., Any],
    ring3: Any,
) -> None:
    """No workers needed: the snapshots are rows as the recorder leaves them."""
    from snapshots import services
    from snapshots.models import Snapshot

    run = services.start_run(ring3, rate=1.0)
    verdict = {"consistent": True, "conserved": True, "expected_total": 300, "recorded_total": 300, "problems": []}
    fields = {"run": run, "initiator": "p1", "status": "complete", "processes_total": 3, "channels_total": 6}
    deadlock = {"holds": True, "detail": "p1 waits for p2 and p2 for p1", "cycle": ["p1", "p2"]}
    stuck = Snapshot.objects.create(
        **fields, verdict=verdict, properties={"deadlock": deadlock, "termination": {"holds": False, "detail": "no"}}
    )
    problem = "p2 recorded receiving seq 7 from p1, which p1 sent after its cut (its marker was seq 5)"
    bad = Snapshot.objects.create(
        **fields, verdict={**verdict, "consistent": False, "problems": [problem]}, reason="the recorded state fails"
    )
    make_user("vera", "viewer")
    log_in(browser, daphne.url, "vera")
    open_run(browser, daphne, run)

    # The newest (inconsistent) snapshot is shown first: every problem, in words.
    wait(browser, "the problems", lambda d: problem in text(d, "#problems"))
    assert text(browser, "#verdict").startswith("inconsistent")
    assert browser.find_elements(By.CSS_SELECTOR, "#snapshot-actions button[data-restore]") == []

    # The deadlocked one: its cycle in red on the graph, and the property first held there.
    js(browser, "document.querySelector(arguments[0]).click()", f'#history tr[data-snapshot="{stuck.pk}"] td')
    wait(
        browser,
        "the cycle on the graph",
        lambda d: js(d, "return window.cutline.cy.getElementById('p1').hasClass('deadlock')"),
    )
    assert js(browser, "return window.cutline.cy.getElementById('p2').hasClass('deadlock')")
    assert not js(browser, "return window.cutline.cy.getElementById('p3').hasClass('deadlock')")
    assert js(browser, "return window.cutline.cy.getElementById('p1→p2').hasClass('deadlock')")
    assert "p1 → p2 → p1" in text(browser, "#properties")
    assert "deadlock ✓ ★ first held" in text(browser, f'#history tr[data-snapshot="{stuck.pk}"]')
    assert bad.pk > stuck.pk
