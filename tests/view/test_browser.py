"""`societas view` in a real browser: headless Chromium driven by Selenium through the pages a researcher uses.

Needs Debian's /usr/bin/chromium and /usr/bin/chromedriver (`.ci/run` installs
them) and selenium; skipped with the reason otherwise. With
SOCIETAS_VIEW_SCREENSHOTS=DIR each page is saved there as a PNG.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from served import ViewServer, small_config

from societas.config import dump_config
from societas.llm.testing import FakeOpenAIServer, FaultConfig

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the [dev] extra)")
httpx = pytest.importorskip("httpx", reason="needs httpx (the [dev] extra)")
pytest.importorskip("fastapi", reason="societas view needs the [view] extra")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1360,1000",
                "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: webdriver.Chrome, name: str, *, full: bool = False) -> None:
    where = os.environ.get("SOCIETAS_VIEW_SCREENSHOTS")
    if not where:
        return
    Path(where).mkdir(parents=True, exist_ok=True)
    if full:
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1360, min(height + 80, 8000))
    driver.save_screenshot(str(Path(where) / f"{name}.png"))
    if full:
        driver.set_window_size(1360, 1000)


def test_the_runs_list_and_a_comparison(browser, view_server, runs_folder: dict[str, Path]) -> None:
    browser.get(view_server.url)
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.run")
    assert len(rows) == 5  # three runs and the sweep's two
    stopped = browser.find_element(By.CSS_SELECTOR, f'tr.run[data-rel="{runs_folder["stopped"].name}"]')
    assert stopped.find_element(By.CSS_SELECTOR, ".status").text == "stopped"
    error = browser.find_element(By.CSS_SELECTOR, "tr.error-row .error").text
    assert "model endpoint failed" in error
    assert browser.find_element(By.CSS_SELECTOR, "tr.sweep .status").text == "complete"
    button = browser.find_element(By.ID, "compare-button")
    assert not button.is_enabled()
    for key in ("scripted", "echo"):
        browser.find_element(By.CSS_SELECTOR, f'input[value="{runs_folder[key].name}"]').click()
    time.sleep(3.5)  # a refresh of the list in between keeps the ticks
    assert button.is_enabled() and button.text == "Compare 2 runs"
    _shot(browser, "runs-list")
    button.click()
    WebDriverWait(browser, 120).until(lambda d: "Comparison" in d.title)
    assert browser.find_element(By.CSS_SELECTOR, "#comparison img").get_attribute("alt") == (
        "cooperation by round per run")
    _shot(browser, "comparison", full=True)


def _live_state(driver: webdriver.Chrome) -> tuple[str, str | None]:
    """The status badge and a digest of the first figure, read at one instant (fragments swap under us)."""
    status, src = driver.execute_script(
        "const s = document.querySelector('.run-head .status'), i = document.querySelector('#report figure img');"
        "return [s ? s.textContent : '', i ? i.getAttribute('src') : null];")
    return status, hashlib.sha1(src.encode()).hexdigest() if src else None


def test_a_live_run_redraws_its_figures_while_it_plays(browser, tmp_path: Path) -> None:
    root = tmp_path / "live"
    root.mkdir()
    faults = FaultConfig(off_format=0.3, salt="live")
    with FakeOpenAIServer("random", latency=0.08, faults=faults) as server:
        cfg = small_config(f"openai:fake@{server.base_url}", root, max_concurrent_episodes=1, flush_every_s=0.3)
        path = tmp_path / "live.yaml"
        path.write_text(dump_config(cfg))
        run = subprocess.Popen([sys.executable, "-m", "societas.cli", "run", str(path), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        view = ViewServer(root)
        try:
            deadline = time.time() + 60
            while time.time() < deadline and not list(root.glob("*/events/part-*.parquet")):
                time.sleep(0.1)
            (run_dir,) = [p for p in root.iterdir() if (p / "config.yaml").is_file()]
            browser.get(f"{view.url}run/{run_dir.name}")
            browser.execute_script("window.notReloaded = true")
            seen, while_running = [], 0
            deadline = time.time() + 180
            while time.time() < deadline:
                status, digest = _live_state(browser)
                if digest is not None and (not seen or seen[-1] != digest):
                    seen.append(digest)
                    if status == "running":
                        while_running += 1
                        if while_running == 2:
                            _shot(browser, "live-run")
                if status == "complete" and run.poll() is not None:
                    break
                time.sleep(0.25)
            assert run.wait(timeout=60) == 0, run.stderr.read()
            final = httpx.get(f"{view.url}api/run/{run_dir.name}", timeout=60).json()["version"]
            WebDriverWait(browser, 60).until(
                lambda d: d.find_element(By.CSS_SELECTOR, "#report").get_attribute("data-version") == final)
            summary = json.loads((run_dir / "summary.json").read_text())
            cards = browser.find_element(By.CSS_SELECTOR, ".run-head .cards").text
            _shot(browser, "live-run-complete", full=True)
        finally:
            view.stop()
            if run.poll() is None:
                run.kill()
    assert while_running >= 2, f"the figures changed {while_running} times while the run played"
    assert browser.execute_script("return window.notReloaded === true"), "the page was reloaded"
    assert f"{summary['decisions']:,}\ndecisions" in cards
    assert browser.find_element(By.CSS_SELECTOR, ".run-head .status").text == "complete"


def test_a_transcript_filtered_to_invalid_decisions(browser, view_server, runs_folder: dict[str, Path]) -> None:
    from societas.analysis.transcript import invalid_decisions

    run = runs_folder["echo"]
    browser.get(f"{view_server.url}run/{run.name}/transcript")
    Select(browser.find_element(By.NAME, "agent")).select_by_visible_text("llm")
    browser.find_element(By.NAME, "invalid").click()
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    WebDriverWait(browser, 60).until(lambda d: "invalid=1" in d.current_url)
    want = invalid_decisions(run)
    want = want[want["agent"] == "llm"]
    count = browser.find_element(By.CSS_SELECTOR, ".pager .count").text
    assert count.startswith(f"{len(want):,} decisions with an unusable reply")
    turns = browser.find_elements(By.CSS_SELECTOR, ".transcript .turn")
    assert turns and all({"fell", "bad"} & set(t.get_attribute("class").split()) for t in turns)
    assert all(t.find_element(By.CSS_SELECTOR, ".head b").text == "llm" for t in turns)
    assert browser.find_element(By.CSS_SELECTOR, ".tabs a.on").text == "Invalid decisions"
    _shot(browser, "transcript-invalid")
    browser.find_element(By.LINK_TEXT, "next ›").click()
    WebDriverWait(browser, 60).until(lambda d: "page=2" in d.current_url)
    assert "agent=llm" in browser.current_url and "invalid=1" in browser.current_url  # the filter is kept


def test_the_browser_needs_nothing_from_the_network(browser, view_server, runs_folder: dict[str, Path]) -> None:
    browser.get(f"{view_server.url}run/{runs_folder['echo'].name}")
    sources = browser.execute_script(
        "return [...document.querySelectorAll('link[href], script[src], img[src]')]"
        ".map(e => e.getAttribute('href') || e.getAttribute('src'))")
    assert sources and all(s.startswith(("/", "data:")) for s in sources), sources
    assert shutil.which("chromium") or Path(CHROMIUM).exists()
