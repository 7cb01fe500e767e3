"""The dashboard in a real headless Chromium, against Daphne, real workers and Redis.

What a person does: log in, start a run from the Runs page, pause and start it, click a
process, take a snapshot from it, and watch the verdict and the history row appear.
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
from selenium.webdriver.support.ui import WebDriverWait

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
    wait(browser, "the recorded state", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recorded tbody tr")) == 9)
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
