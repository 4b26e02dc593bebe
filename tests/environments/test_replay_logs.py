"""Replay every logged round of the repeated-games study (Akata et al. 2023) through the env.

Feeding the logged answers, with the letters each logged game used, must give the
logged points and running totals exactly: this pins the payoffs, the seat
perspective and, for the 144 games, the mapping of `choice_option1` /
`choice_option2` to canonical options 0 / 1 (row / column 1 and 2).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from societas.environments.matrix_game import RepeatedMatrixGame

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "akata2023"
ROUNDS = 10

pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"the study's logs are absent ({DATA.resolve()}); shared/ sits beside the repo"
)


def episodes(path: Path) -> Iterator[list[dict[str, str]]]:
    """The log's rows cut into episodes: consecutive runs of rounds 1..10."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) % ROUNDS == 0, path
    for start in range(0, len(rows), ROUNDS):
        episode = rows[start:start + ROUNDS]
        assert [int(r["round"]) for r in episode] == list(range(1, ROUNDS + 1)), (path, start)
        yield episode


def replay(env: RepeatedMatrixGame, episode: list[dict[str, str]], where: str) -> None:
    env.reset(seed=0)
    total = [0.0, 0.0]
    for row in episode:
        _, rewards, _, truncs, infos = env.step({"player_0": row["answer1"], "player_1": row["answer2"]})
        total[0] += rewards["player_0"]
        total[1] += rewards["player_1"]
        got = (rewards["player_0"], rewards["player_1"], total[0], total[1])
        want = tuple(float(row[k]) for k in ("points1", "points2", "total1", "total2"))
        assert got == want, f"{where}, round {row['round']}: {row['answer1']}/{row['answer2']}"
        assert (infos["player_0"]["action"], infos["player_1"]["action"]) == (row["answer1"], row["answer2"])
    assert all(truncs.values()) and not env.agents


@pytest.mark.parametrize(("path", "game"), [
    ("pd/experiment_pd.csv", "prisoners_dilemma"),
    ("bos/experiment_bos.csv", "battle_of_the_sexes"),
])
def test_replay_two_game_logs(path: str, game: str) -> None:
    env = RepeatedMatrixGame(game, rounds=ROUNDS)
    count = 0
    for k, episode in enumerate(episodes(DATA / path)):
        replay(env, episode, f"{path}, episode {k} ({episode[0]['player1']} vs {episode[0]['player2']})")
        count += 1
    assert count == {"prisoners_dilemma": 64, "battle_of_the_sexes": 81}[game]


def test_replay_all_144_games() -> None:
    rounds = 0
    for n in range(1, 145):
        path = DATA / "all_games" / "experiments" / f"game_{n}.csv"
        envs: dict[tuple[str, str], RepeatedMatrixGame] = {}
        logged = list(episodes(path))
        for k, episode in enumerate(logged):
            letters = (episode[0]["choice_option1"], episode[0]["choice_option2"])
            assert all((r["choice_option1"], r["choice_option2"]) == letters for r in episode)
            env = envs.get(letters)
            if env is None:
                env = envs[letters] = RepeatedMatrixGame(f"akata144:{n}", letters=letters, rounds=ROUNDS)
            assert episode[0]["game_name"] == env.game.name
            replay(env, episode, f"game_{n}.csv, episode {k}")
            rounds += ROUNDS
        assert not _fits_flipped(n, logged), f"game {n}: option1 = canonical 1 fits the log too"
    assert rounds == 144 * 25 * ROUNDS


def _fits_flipped(n: int, logged: list[list[dict[str, str]]]) -> bool:
    """Whether the opposite mapping (choice_option1 = canonical option 1) also explains the log."""
    for episode in logged:
        letters = (episode[0]["choice_option2"], episode[0]["choice_option1"])
        try:
            replay(RepeatedMatrixGame(f"akata144:{n}", letters=letters, rounds=ROUNDS), episode, "flipped")
        except AssertionError:
            return False
    return True
