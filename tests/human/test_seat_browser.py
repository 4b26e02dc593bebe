"""Two people play a whole Prisoner's Dilemma against replayed GPT-4 in headless Chromium, through
`societas run`; the recorded events are checked against the clicks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from societas.agents.replay import REPLAY_POLICIES
from societas.analysis import load_run

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)"),
]
webdriver = pytest.importorskip("selenium.webdriver")
pytest.importorskip("fastapi")

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CONFIG = """
name: browser-pd
seed: 5
environment: {id: repeated-matrix-game, params: {game: prisoners_dilemma, rounds: 10}}
population:
  - {name: person, policy: human, count: 2}
  - {name: gpt4, policy: "replay:akata2023/pd_gpt4"}
matchmaking: {kind: assigned, assign: {person: [gpt4]}}
human: {timeout_s: 300}
"""
PLANS = {"person-1": "JJFJJJFJJF", "person-2": "FJJJFFJJJJ"}


def _browser() -> Any:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def _start_run(tmp_path: Path, text: str = CONFIG, seats: int = 2) -> tuple[subprocess.Popen[str], dict[str, str]]:
    config = tmp_path / "browser.yaml"
    config.write_text(text)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               SOCIETAS_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "societas.cli", "run", str(config), "--out", str(tmp_path / "runs"),
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    urls: dict[str, str] = {}
    assert proc.stdout is not None
    while len(urls) < seats:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the run ended before serving its seats (exit {proc.wait()})")
        m = re.fullmatch(r"seat (\S+): (http://127\.0\.0\.1:\d+/seat/[A-Za-z0-9_-]{24,})\n", line)
        if m:
            urls[m.group(1)] = m.group(2)
    return proc, urls


def _wait_for_round(driver: Any, rnd: int) -> None:
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "app").get_attribute("data-round") == str(rnd))


def test_two_people_play_a_whole_game_in_the_browser(tmp_path: Path) -> None:
    shots = Path(os.environ.get("SOCIETAS_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    proc, urls = _start_run(tmp_path)
    drivers: dict[str, Any] = {}
    clicks: dict[str, list[str]] = {name: [] for name in PLANS}
    pages = 0
    try:
        for name in PLANS:
            drivers[name] = _browser()
            drivers[name].get(urls[name])
            pages += 1
        for rnd in range(1, 11):
            for name, plan in PLANS.items():
                d = drivers[name]
                _wait_for_round(d, rnd)
                # the page shows what happened so far, as this person clicked it
                shown = [td.text for td in d.find_elements(By.CSS_SELECTOR, "#history tbody td.you")]
                assert shown == clicks[name]
                assert d.find_element(By.ID, "question").text.startswith("Which Option do you choose")
                if name == "person-1" and rnd == 6:
                    d.save_screenshot(str(shots / "seat-mid-game.png"))
                buttons = d.find_elements(By.CSS_SELECTOR, "#choices button.choice")
                assert sorted(b.get_attribute("data-value") for b in buttons) == ["F", "J"]
                next(b for b in buttons if b.get_attribute("data-value") == plan[rnd - 1]).click()
                clicks[name].append(plan[rnd - 1])
        for d in drivers.values():
            WebDriverWait(d, 30).until(lambda d: d.find_element(By.ID, "app").get_attribute("data-status") == "done")
        output = proc.communicate(timeout=60)[0]
        time.sleep(1.5)  # past the page's retry interval: what stays on screen once the server is gone
        for d in drivers.values():
            assert d.find_element(By.ID, "app").get_attribute("data-status") == "done"
            assert "Thank you" in d.find_element(By.ID, "notice").text
        drivers["person-2"].save_screenshot(str(shots / "seat-done.png"))
    finally:
        for d in drivers.values():
            d.quit()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    run_dir = Path(re.search(r"run directory: (\S+)", output).group(1))
    ev = load_run(run_dir).events
    people = ev[ev["policy"] == "human"]
    figures = {"pages_loaded": pages, "clicks": sum(map(len, clicks.values())), "decisions_recorded": len(people)}
    (shots / "browser-figures.json").write_text(json.dumps(figures))
    assert figures == {"pages_loaded": 2, "clicks": 20, "decisions_recorded": 20}
    table = REPLAY_POLICIES["akata2023/pd_gpt4"]
    for name, plan in PLANS.items():
        mine = people[people["agent"] == name].sort_values("round")
        assert mine["action"].tolist() == list(plan) == clicks[name]
        assert mine["valid"].all() and (mine["latency_s"] > 0).all() and set(mine["policy_kind"]) == {"human"}
        gpt = ev[(ev["episode"] == mine["episode"].iloc[0]) & (ev["agent"] == "gpt4")].sort_values("round")
        moves = [0 if a == "J" else 1 for a in plan]
        assert gpt["action"].tolist() == ["JF"[table.move(moves[:r])] for r in range(10)]


def _status(driver: Any) -> str:
    return driver.find_element(By.ID, "app").get_attribute("data-status")


def test_a_person_plays_both_games_of_the_human_experiment_by_keyboard(tmp_path: Path) -> None:
    """configs/akata_human.yaml for one person, 3 rounds a game: keys J / F, the debrief after each game."""
    import yaml

    from societas.config import bundled_config

    data = yaml.safe_load(bundled_config("akata_human").read_text())
    data["population"][0]["count"] = 1
    data["environment"]["params"]["rounds"] = 3
    shots = Path(os.environ.get("SOCIETAS_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    proc, urls = _start_run(tmp_path, yaml.safe_dump(data), seats=1)
    keys, answers = [], []
    d = _browser()
    try:
        d.get(urls["participant"])
        body = d.find_element(By.TAG_NAME, "body")
        for game in (1, 2):
            for rnd in (1, 2, 3):
                _wait_for_round(d, rnd)
                assert d.find_element(By.ID, "where").text.startswith(f"Game {game} of 2")
                key = "JFJ"[rnd - 1] if game == 1 else "FFJ"[rnd - 1]
                qid = d.find_element(By.ID, "app").get_attribute("data-question")
                body.send_keys(key.lower())
                keys.append(key)
                WebDriverWait(d, 30).until(lambda d, qid=qid: d.find_element(By.ID, "app").get_attribute(
                    "data-question") != qid)
            WebDriverWait(d, 30).until(lambda d: d.find_element(By.ID, "question").text.startswith("Do you think"))
            assert len(d.find_elements(By.CSS_SELECTOR, "#history tbody tr")) == 3  # the whole game, shown
            if game == 1:
                d.save_screenshot(str(shots / "seat-debrief.png"))
            answer = "an AI" if game == 1 else "a human"
            d.find_element(By.CSS_SELECTOR, f'#choices button[data-value="{answer}"]').click()
            answers.append(answer)
        WebDriverWait(d, 30).until(lambda d: _status(d) == "done")
        output = proc.communicate(timeout=60)[0]
    finally:
        d.quit()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    run = load_run(Path(re.search(r"run directory: (\S+)", output).group(1)))
    mine = run.events[run.events["policy"] == "human"].sort_values(["episode", "round"])
    assert mine["action"].tolist() == keys and mine["valid"].all()
    debriefs = run.episodes[run.episodes["policy"] == "human"].sort_values("episode")["summary"].map(json.loads)
    assert [s["debrief"]["partner"] for s in debriefs] == answers
