"""The released logs of Akata et al. (2023), "Playing repeated games with Large Language
Models", as societas events, and the study's analyses reproduced on them.

The data (MIT licence, copyright (c) 2024 Elif Akata; see the LICENSE.md beside
it) is not shipped with societas: the loaders take the path of their file
(`load_144_games` its folder), and `akata_validation` accepts the folder
holding the study's files (`pd/`, `bos/`, `all_games/`, `human_experiment/`),
or one with `akata2023/` or `data/akata2023/` inside.

Loaders return the tidy shape of a run's events table, one row per decision:
phase (0), episode, round (from 1), seat (0 = player 1, who picks the row),
agent (the log's player name, e.g. act_gpt4), partner, policy (= agent),
action (the letter answered), option (0 / 1, the canonical option),
cooperated (PD only; missing elsewhere), valid (True), retries (0), reward
(points this round), cumulative_reward (the logged running total), env, game.
So `cooperation.agent_table`, `conditional_cooperation`, `normalised_scores`
and the other metrics run on them unchanged.

Episodes of the two-game logs and of each 144-game file are the runs of rounds
1..R in file order (one per pairing); the 144-game episodes are numbered on
across the games, game 1 first.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from societas.analysis.cooperation import coordination_rate, family_scores, normalised_scores
from societas.analysis.stats import pooled_ttest, ttest_bf

PD_GAME = "prisoners_dilemma"
BOS_GAME = "battle_of_the_sexes"
GAME_PREFIX = "akata144:"
LETTERS = ("J", "F")
"""Option 0 and option 1 of the Prisoner's Dilemma and Battle of the Sexes logs (J = cooperate)."""

EVENT_COLUMNS = ["phase", "episode", "round", "seat", "agent", "partner", "policy", "action", "option",
                 "cooperated", "valid", "retries", "reward", "cumulative_reward", "env", "game"]


def _episodes(rounds: pd.Series, where: str) -> np.ndarray:
    """Episode index per row: a new episode starts at every round 1; rounds must then count up by one."""
    r = rounds.to_numpy()
    starts = r == 1
    if len(r) and not starts[0]:
        raise ValueError(f"{where}: the first row is round {r[0]}, expected 1")
    episode = np.cumsum(starts) - 1
    step = np.diff(r)
    bad = np.flatnonzero(~starts[1:] & (step != 1))
    if len(bad):
        raise ValueError(f"{where}, line {bad[0] + 3}: round {r[bad[0] + 1]} after round {r[bad[0]]}")
    return episode


def _seat_rows(log: pd.DataFrame, seat: int, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    me, other = ("1", "2") if seat == 0 else ("2", "1")
    return pd.DataFrame({
        **{c: log[c].to_numpy() for c in extra},
        "phase": 0, "episode": log["episode"].to_numpy(), "round": log["round"].to_numpy(), "seat": seat,
        "agent": log[f"player{me}"].to_numpy(), "partner": log[f"player{other}"].to_numpy(),
        "action": log[f"answer{me}"].to_numpy(), "reward": log[f"points{me}"].astype(float).to_numpy(),
        "cumulative_reward": log[f"total{me}"].astype(float).to_numpy(),
    }, index=log.index)


def _stack(log: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Two event rows per log row (seat 0 = player1, seat 1 = player2), sorted by episode, round, seat.

    The log's columns in `extra` are copied onto both rows.
    """
    ev = pd.concat([_seat_rows(log, 0, extra), _seat_rows(log, 1, extra)])
    ev = ev.sort_values(["episode", "round", "seat"], kind="stable").reset_index(drop=True)
    ev["policy"] = ev["agent"]
    ev["valid"] = True
    ev["retries"] = 0
    ev["env"] = "repeated-matrix-game"
    return ev


def _two_game_log(path: str | Path, game: str, cooperative: bool) -> pd.DataFrame:
    p = Path(path)
    log = pd.read_csv(p)
    log["episode"] = _episodes(log["round"], str(p))
    ev = _stack(log)
    unknown = sorted(set(ev["action"]) - set(LETTERS))
    if unknown:
        raise ValueError(f"{p}: answers other than J and F: {unknown}")
    ev["option"] = (ev["action"] == LETTERS[1]).astype(int)
    ev["cooperated"] = pd.array(ev["option"] == 0, dtype="boolean") if cooperative else pd.NA
    ev["cooperated"] = ev["cooperated"].astype("boolean")
    ev["game"] = game
    return ev[EVENT_COLUMNS]


def load_pd_log(path: str | Path) -> pd.DataFrame:
    """The Prisoner's Dilemma log (pd/experiment_pd.csv) as events.

    Columns of the file: round, player1, player2, answer1, answer2, points1,
    points2, total1, total2. option 0 = J (cooperate, cooperated True), 1 = F;
    game "prisoners_dilemma". One episode per pairing (8 x 8 players, self-play included).
    """
    return _two_game_log(path, PD_GAME, cooperative=True)


def load_bos_log(path: str | Path) -> pd.DataFrame:
    """The Battle of the Sexes log (bos/experiment_bos.csv) as events.

    Same columns as the PD log; option 0 = J, 1 = F (player 1 prefers J/J,
    player 2 F/F); cooperated is missing; game "battle_of_the_sexes".
    """
    return _two_game_log(path, BOS_GAME, cooperative=False)


def load_games_info(path: str | Path) -> pd.DataFrame:
    """The 144 games' table (all_games/144_games_info.csv, semicolon separated) as a games frame.

    Columns: game ("akata144:N", as societas names the game), number, name,
    family, row, col (place in the Robinson-Goforth table), the ordinal payoffs
    r{i}_c{j}_p{k} (player k's points when player 1 picks row i and player 2
    column j, 1..4), and max_payoff = the largest of the eight (the
    normalisation of `cooperation.normalised_scores`).
    """
    info = pd.read_csv(path, sep=";")
    cells = [f"r{i}_c{j}_p{k}" for i in (1, 2) for j in (1, 2) for k in (1, 2)]
    out = pd.DataFrame({
        "game": GAME_PREFIX + info["game_number"].astype(str), "number": info["game_number"],
        "name": info["game_name"], "family": info["game_family"], "row": info["game_row"],
        "col": info["game_col"],
    })
    out[cells] = info[cells].astype(float)
    out["max_payoff"] = out[cells].max(axis=1)
    return out


def load_144_games(folder: str | Path) -> pd.DataFrame:
    """Every logged round of the 144-game study (all_games/) as events.

    `folder` holds 144_games_info.csv and experiments/game_N.csv. The letters
    differ per episode: in each row `choice_option1` is the letter of option 0
    (row 1 / column 1 of the game's table) and `choice_option2` of option 1;
    player 1 (seat 0) picks the row. game = "akata144:N"; extra columns
    game_number, game_name, family. cooperated is missing (the ordinal games
    name no cooperative option). Episodes are numbered on across games.
    """
    base = Path(folder)
    info = load_games_info(base / "144_games_info.csv")
    logs = []
    offset = 0
    for number in info["number"]:
        path = base / "experiments" / f"game_{number}.csv"
        log = pd.read_csv(path)
        log["episode"] = _episodes(log["round"], str(path)) + offset
        log["game"] = f"{GAME_PREFIX}{number}"
        offset = int(log["episode"].max()) + 1
        logs.append(log)
    ev = _stack(pd.concat(logs, ignore_index=True), extra=("game", "choice_option1", "choice_option2"))
    first, second = ev.pop("choice_option1").to_numpy(), ev.pop("choice_option2").to_numpy()
    action = ev["action"].to_numpy()
    bad = np.flatnonzero((action != first) & (action != second))
    if len(bad):
        raise ValueError(f"{base / 'experiments'}: answer {action[bad[0]]!r} in {ev['game'].iloc[bad[0]]}, "
                         f"episode {ev['episode'].iloc[bad[0]]} matches neither choice_option1 nor choice_option2")
    ev["option"] = np.where(action == first, 0, 1)
    ev["cooperated"] = pd.array([pd.NA] * len(ev), dtype="boolean")
    events = ev[EVENT_COLUMNS].copy()
    meta = info.set_index("game")
    events["game_number"] = events["game"].map(meta["number"])
    events["game_name"] = events["game"].map(meta["name"])
    events["family"] = events["game"].map(meta["family"])
    return events


def load_human_experiment(path: str | Path) -> pd.DataFrame:
    """The human experiment (human_experiment/analysis/repgames.csv) as events of the participants.

    The file has one row per participant round: id, game (PD / BoS), action
    (0 / 1), score, opponent (Base = GPT-4 as is, Prompted = GPT-4 with the
    social chain-of-thought prompt), guess (Human / LLM: what the participant
    thought the partner was), coordination. Rows of one (id, game) are the
    rounds in file order. Reading of `action`, checked against the scores:
    action 1 = J (option 0: in the PD it earns 8 or 0, J's payoffs; in BoS 7 when
    coordinated) and action 0 = F (option 1: 10 or 5 in the PD, 10 when
    coordinated in BoS). The participant therefore sits in seat 0 of the PD and
    seat 1 of BoS (the player who prefers F/F). Columns: the event columns
    (agent "participant-<id>", partner = opponent, game prisoners_dilemma /
    battle_of_the_sexes, cooperated = J in the PD) and participant, opponent,
    guessed_human (guess == "Human"), coordinated (BoS: score > 0, as the
    study's analysis counts it; missing in the PD), coordination (the file's column).
    """
    raw = pd.read_csv(path)
    games = {"PD": PD_GAME, "BoS": BOS_GAME}
    unknown = sorted(set(raw["game"]) - set(games))
    if unknown:
        raise ValueError(f"{path}: unknown games {unknown}")
    pair = raw["id"].astype(str) + "/" + raw["game"]
    episode = pd.factorize(pair)[0]
    option = 1 - raw["action"].astype(int)
    is_pd = raw["game"] == "PD"
    ev = pd.DataFrame({
        "phase": 0, "episode": episode, "round": raw.groupby(pair, sort=False).cumcount() + 1,
        "seat": np.where(is_pd, 0, 1), "agent": "participant-" + raw["id"].astype(str),
        "partner": raw["opponent"], "policy": "human",
        "action": np.where(option == 0, LETTERS[0], LETTERS[1]), "option": option,
        "cooperated": pd.array(np.where(is_pd, option == 0, False), dtype="boolean"),
        "valid": True, "retries": 0, "reward": raw["score"].astype(float),
        "cumulative_reward": raw.groupby(pair, sort=False)["score"].cumsum().astype(float),
        "env": "repeated-matrix-game", "game": raw["game"].map(games),
    })
    ev.loc[~is_pd.to_numpy(), "cooperated"] = pd.NA
    ev["participant"] = raw["id"]
    ev["opponent"] = raw["opponent"]
    ev["guessed_human"] = raw["guess"] == "Human"
    ev["coordinated"] = pd.array(np.where(is_pd, False, raw["score"] > 0), dtype="boolean")
    ev.loc[is_pd.to_numpy(), "coordinated"] = pd.NA
    ev["coordination"] = raw["coordination"]
    return ev


OPPONENTS = {"replay:akata2023/gpt4": "Base", "replay:akata2023/gpt4_scot": "Prompted",
             "replay:akata2023/pd_gpt4": "Base", "replay:akata2023/pd_gpt4_scot": "Prompted",
             "replay:akata2023/bos_gpt4": "Base", "replay:akata2023/bos_gpt4_scot": "Prompted"}
"""The study's names of the partner conditions, by the replay policy a run played them with."""


def load_human_runs(paths: list[str | Path], *, guess_key: str = "partner",
                    human_answer: str = "a human") -> pd.DataFrame:
    """The `policy: human` decisions of runs of configs/akata_human.yaml, shaped as `load_human_experiment`.

    One row per decision of a person: the event columns, participant
    ("<run_id>/<member>", unique across runs), opponent (Base / Prompted from
    the partner's replay policy, else the policy itself), guessed_human (the
    answer to the debrief question `guess_key` equals `human_answer`; missing
    when the person let it time out), coordinated (BoS: reward > 0; missing in
    the PD) and valid (False where the seat timed out and the default was played).
    So `participant_means` and `human_comparisons` run on them unchanged.
    """
    from societas.analysis.load import load_run

    frames = []
    for path in paths:
        run = load_run(path)
        ev, episodes = run.events, run.episodes
        policy = dict(zip(zip(ev["phase"], ev["episode"], ev["agent"]), ev["policy"]))
        ev = ev[ev["policy"] == "human"].copy()
        guesses = {}
        for row in episodes[episodes["policy"] == "human"].itertuples():
            summary = json.loads(row.summary) if isinstance(row.summary, str) else {}
            answer = (summary.get("debrief") or {}).get(guess_key)
            guesses[(row.phase, row.episode, row.agent)] = pd.NA if answer is None else answer == human_answer
        keys = list(zip(ev["phase"], ev["episode"], ev["agent"]))
        ev["participant"] = ev["run_id"].astype(str) + "/" + ev["agent"].astype(str)
        partner_policy = [policy.get((ph, e, p), p) for ph, e, p in zip(ev["phase"], ev["episode"], ev["partner"])]
        ev["opponent"] = [OPPONENTS.get(p, p) for p in partner_policy]
        ev["guessed_human"] = pd.array([guesses.get(k, pd.NA) for k in keys], dtype="boolean")
        is_bos = (ev["game"] == BOS_GAME).to_numpy()
        ev["coordinated"] = pd.array(np.where(is_bos, ev["reward"] > 0, False), dtype="boolean")
        ev.loc[~is_bos, "coordinated"] = pd.NA
        frames.append(ev)
    if not frames:
        return pd.DataFrame(columns=[*EVENT_COLUMNS, "participant", "opponent", "guessed_human", "coordinated"])
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- the study's analyses


def cooperation_rates(events: pd.DataFrame) -> pd.DataFrame:
    """Per player: share of rounds it chose the cooperative option (J in the PD), over both seats.

    cooperation_rate = (# decisions with cooperated True) / (# decisions where
    cooperated is known); decisions = that denominator. Sorted by rate, highest first.
    """
    ev = events[events["cooperated"].notna()]
    out = ev.groupby("agent")["cooperated"].agg(["size", "mean"]).reset_index()
    out = out.rename(columns={"size": "decisions", "mean": "cooperation_rate"})
    out["cooperation_rate"] = out["cooperation_rate"].astype(float)
    return out.sort_values(["cooperation_rate", "agent"], ascending=[False, True]).reset_index(drop=True)


def scores_by_family(events: pd.DataFrame, games: pd.DataFrame) -> pd.DataFrame:
    """Normalised scores of the 144 games per player and family, one column per family and "all".

    score of an episode and seat = total / (rounds x the game's largest payoff)
    (`cooperation.normalised_scores`); a cell = mean over the player's episodes
    in that family, "all" over every episode (`cooperation.family_scores`).
    Rows: players sorted by "all", best first.
    """
    table = family_scores(normalised_scores(events, games))
    wide = table.pivot(index="agent", columns="family", values="score")
    cols = [*sorted(c for c in wide.columns if c != "all"), "all"]
    wide = wide[cols].sort_values("all", ascending=False)
    wide.columns.name = None
    return wide


HUMAN_MEASURES = {
    "bos_score": "mean points per round in Battle of the Sexes",
    "pd_score": "mean points per round in the Prisoner's Dilemma",
    "guessed_human": "share of games in which the participant took the partner for a human (both games)",
    "bos_coordination": "share of Battle of the Sexes rounds with a coordinated outcome (score > 0)",
    "pd_cooperation": "share of Prisoner's Dilemma rounds in which the participant chose J",
}


def participant_means(human: pd.DataFrame) -> pd.DataFrame:
    """One row per participant: opponent and the per-participant means in `HUMAN_MEASURES`.

    bos_score = mean reward over the participant's BoS rounds; pd_score the
    same in the PD; guessed_human = mean of guessed_human over all the
    participant's rounds (the guess is per game, so this is the share of the two
    games); bos_coordination = mean of coordinated over BoS rounds;
    pd_cooperation = mean of cooperated over PD rounds.
    """
    is_pd = human["game"] == PD_GAME
    pd_rows, bos_rows = human[is_pd], human[~is_pd]
    g = human.groupby("participant", sort=True)
    out = pd.DataFrame({
        "opponent": g["opponent"].first(),
        "bos_score": bos_rows.groupby("participant")["reward"].mean(),
        "pd_score": pd_rows.groupby("participant")["reward"].mean(),
        "guessed_human": g["guessed_human"].mean().astype(float),
        "bos_coordination": bos_rows.groupby("participant")["coordinated"].mean().astype(float),
        "pd_cooperation": pd_rows.groupby("participant")["cooperated"].mean().astype(float),
    })
    return out.reset_index()


def human_comparisons(human: pd.DataFrame, rscale: float = math.sqrt(2) / 2) -> pd.DataFrame:
    """Prompted vs Base on per-participant means, with one-sided JZS Bayes factors.

    For each measure of `participant_means`: x = the means of participants who
    played the Prompted GPT-4, y = those who played the Base GPT-4; mean_x,
    mean_y, n_x, n_y, the pooled t and its one-sided p (x > y), and
    bf10 = `ttest_bf(x, y, alternative="greater", rscale=rscale)`.
    Direction tested: Prompted > Base, the study's hypothesis that the social
    chain-of-thought prompt makes GPT-4 a better partner (more coordination,
    higher scores, more human-like); it is the BayesFactor result for the
    complement of nullInterval=c(-Inf, 0) in ttestBF(Prompted, Base). bf10 < 1
    is evidence for no increase.
    """
    means = participant_means(human)
    rows = []
    for measure in HUMAN_MEASURES:
        x = means.loc[means["opponent"] == "Prompted", measure].dropna()
        y = means.loc[means["opponent"] == "Base", measure].dropna()
        tt = pooled_ttest(x, y, alternative="greater")
        rows.append({"measure": measure, "mean_prompted": tt.mean_x, "mean_base": tt.mean_y,
                     "n_prompted": tt.n_x, "n_base": tt.n_y, "t": tt.t, "p_greater": tt.p,
                     "bf10_greater": ttest_bf(x, y, alternative="greater", rscale=rscale)})
    return pd.DataFrame(rows)


def _data_dir(shared_dir: str | Path) -> Path:
    p = Path(shared_dir)
    for candidate in (p, p / "akata2023", p / "data" / "akata2023"):
        if (candidate / "pd" / "experiment_pd.csv").is_file():
            return candidate
    raise FileNotFoundError(f"{p}: no pd/experiment_pd.csv here, nor under akata2023/ or data/akata2023/")


def akata_validation(shared_dir: str | Path) -> dict[str, Any]:
    """The study's headline numbers recomputed from its released logs, as plain floats.

    Keys:
    - pd_cooperation: player -> share of J over its PD rounds (`cooperation_rates`);
    - bos_coordination: player -> share of its BoS rounds with both on the same option;
    - games144_scores: player -> {family -> mean normalised score, "all" -> over all 144 games};
    - human: measure -> {mean_prompted, mean_base, n_prompted, n_base, t, p_greater,
      bf10_greater} (`human_comparisons`, one-sided Prompted > Base);
    - counts: rows read from each log.
    """
    root = _data_dir(shared_dir)
    pd_ev = load_pd_log(root / "pd" / "experiment_pd.csv")
    bos_ev = load_bos_log(root / "bos" / "experiment_bos.csv")
    games = load_games_info(root / "all_games" / "144_games_info.csv")
    g144 = load_144_games(root / "all_games")
    human = load_human_experiment(root / "human_experiment" / "analysis" / "repgames.csv")
    coop = cooperation_rates(pd_ev)
    coord = coordination_rate(bos_ev)
    fam = scores_by_family(g144, games)
    comp = human_comparisons(human)
    return {
        "pd_cooperation": {a: float(r) for a, r in zip(coop["agent"], coop["cooperation_rate"])},
        "bos_coordination": {a: float(r) for a, r in zip(coord["agent"], coord["coordination_rate"])},
        "games144_scores": {a: {f: float(v) for f, v in row.items()} for a, row in fam.iterrows()},
        "human": {row["measure"]: {k: (int(v) if k.startswith("n_") else float(v))
                                   for k, v in row.items() if k != "measure"}
                  for row in comp.to_dict("records")},
        "counts": {"pd_events": len(pd_ev), "bos_events": len(bos_ev), "games144_events": len(g144),
                   "human_rows": len(human), "participants": int(human["participant"].nunique())},
    }
