"""The Ray runner on a real multi-node Ray cluster on this machine.

One `ray.cluster_utils.Cluster` serves the module: a head with no CPUs (so
shards land on workers) and two worker nodes of 2 CPUs. Every run is compared
with the local runner's events row by row: the runner, the number of shards,
a resume and a lost node must not change a single event.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import ray
from ray.cluster_utils import Cluster

from societas.analysis import load_run
from societas.analysis.load import comparable
from societas.config import ExperimentConfig, LLMConfig, RunnerConfig, load_config, parse_config
from societas.llm.specs import ModelOptions
from societas.llm.testing import FakeOpenAIServer
from societas.runners.local import RunContext, play_episode
from societas.runners.ray_runner import RayShards, ShardLostError
from societas.runners.run import resume_run, run_experiment
from societas.societies.society import EpisodeSpec, Seat

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Head (0 CPUs) + two 2-CPU worker nodes; the test process is its driver."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(2):
        c.add_node(num_cpus=2)
    ray.init(address=c.address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    c.wait_for_nodes()
    yield c
    ray.shutdown()
    c.shutdown()


def with_runner(cfg: ExperimentConfig, **runner: Any) -> ExperimentConfig:
    return cfg.model_copy(update={"runner": RunnerConfig(**{**cfg.runner.model_dump(), **runner})})


def assert_same_events(a: Path, b: Path) -> None:
    ra, rb = load_run(a), load_run(b)
    assert len(ra.events) > 0
    pd.testing.assert_frame_equal(comparable(ra.events), comparable(rb.events))
    pd.testing.assert_frame_equal(ra.episodes.drop(columns="run_id").reset_index(drop=True),
                                  rb.episodes.drop(columns="run_id").reset_index(drop=True))
    pd.testing.assert_frame_equal(ra.lineage.reset_index(drop=True), rb.lineage.reset_index(drop=True))


def drop_parts(run_dir: Path, keep: int) -> None:
    """Leave only the first `keep` events parts, as if the run had been killed; their companions stay orphaned."""
    parts = sorted((run_dir / "events").glob("part-*.parquet"))
    assert len(parts) > keep, "the run wrote too few parts to cut"
    for p in parts[keep:]:
        p.unlink()
    for p in sorted((run_dir / "lineage").glob("phase-*.parquet"))[keep:]:
        p.unlink()
    (run_dir / "summary.json").unlink()


@pytest.fixture(scope="module")
def pd_local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rd, _ = run_experiment(load_config("pd_tournament", output_dir=str(tmp_path_factory.mktemp("local"))),
                           progress=False)
    return rd.path


@pytest.mark.parametrize("shards", [1, 4])
def test_tournament_same_events_as_local(cluster: Cluster, pd_local: Path, tmp_path: Path, shards: int) -> None:
    cfg = with_runner(load_config("pd_tournament", output_dir=str(tmp_path)), kind="ray", shards=shards,
                      max_concurrent_episodes=8)
    rd, summary = run_experiment(cfg, progress=False)
    assert summary["runner"]["kind"] == "ray" and summary["runner"]["shards"] == shards
    if shards == 4:  # one CPU per shard, two per node: both workers hold shards
        assert summary["runner"]["nodes"] == 2
    assert summary["episodes"] == 14 * 14
    assert_same_events(pd_local, rd.path)


def test_naming_game_same_events_as_local(cluster: Cluster, tmp_path: Path) -> None:
    """Pairs of a population played in steps of disjoint pairs: the same events on Ray shards as locally."""
    members = [{"name": "c", "policy": "scripted:committed", "count": 2, "params": {"name": "M"}},
               {"name": "p", "policy": "scripted:minimal", "count": 4},
               {"name": "b", "policy": "scripted:best_response", "count": 4}]
    data = {"name": "naming-ray", "seed": 3, "environment": {"id": "naming-game", "params": {
        "num_agents": 10, "names": ["Q", "M", "X"], "rounds": 15, "prefill": "Q"}},
        "population": members, "matchmaking": {"kind": "population", "repetitions": 6}}
    local, _ = run_experiment(parse_config({**data, "output_dir": str(tmp_path / "local")}), progress=False)
    cfg = parse_config({**data, "output_dir": str(tmp_path / "ray"),
                        "runner": {"kind": "ray", "shards": 3, "max_concurrent_episodes": 2}})
    rd, summary = run_experiment(cfg, progress=False)
    assert summary["runner"]["kind"] == "ray" and summary["episodes"] == 6
    assert_same_events(local.path, rd.path)


def test_evolving_society_and_resume(cluster: Cluster, tmp_path: Path) -> None:
    cfg = load_config("donor_game", output_dir=str(tmp_path / "local"))
    cfg = cfg.model_copy(update={"society": cfg.society.model_copy(update={"generations": 3, "societies": 3})})
    local, _ = run_experiment(cfg, progress=False)
    rd, summary = run_experiment(with_runner(cfg, kind="ray", shards=3), progress=False)
    assert summary["runner"]["nodes"] == 2 and summary["episodes"] == 3 * 3
    assert_same_events(local.path, rd.path)
    assert load_run(rd.path).lineage["phase"].nunique() == 3
    # a crash after the first generation: generations 2 and 3 are replayed and re-evolved on Ray
    drop_parts(rd.path, keep=1)
    _, summary = resume_run(rd.path, progress=False, runner={"kind": "ray", "shards": 2})
    assert summary["runner"]["shards"] == 2 and summary["episodes"] == 9
    assert_same_events(local.path, rd.path)


def llm_config(tmp_path: Path, base_url: str, cache: str | bool, **runner: Any) -> ExperimentConfig:
    return parse_config({
        "name": "llm-ray", "seed": 3,
        "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma", "rounds": 5}},
        "population": [{"name": "m", "policy": "llm", "count": 3},
                       {"name": "scot", "policy": "llm", "social_chain_of_thought": True},
                       {"name": "tft", "policy": "scripted:tft_noise20"}],
        "model": f"openai:fake@{base_url}",
        "llm": {"temperature": 0.7, "structured_outputs": "none", "cache": cache},
        "runner": {"max_concurrent_episodes": 4, "flush_every_s": 0.01, **runner},
        "output_dir": str(tmp_path),
    })


def test_llm_run_and_resume_against_the_fake_server(cluster: Cluster, tmp_path: Path) -> None:
    with FakeOpenAIServer("random") as server:
        cache = str(tmp_path / "ray-cache.sqlite")
        rd, summary = run_experiment(llm_config(tmp_path / "ray", server.base_url, cache, kind="ray", shards=2),
                                     progress=False)
        asked = server.stats.total
        local, _ = run_experiment(llm_config(tmp_path / "local", server.base_url, False), progress=False)
        assert summary["runner"]["shards"] == 2 and summary["llm_calls"] > 0 and asked > 0
        assert_same_events(local.path, rd.path)
        drop_parts(rd.path, keep=2)
        server.reset_stats()
        _, summary = resume_run(rd.path, progress=False, runner={"shards": 1})
        assert summary["runner"]["shards"] == 1
        assert server.stats.total == 0, "replayed episodes should come from the shards' response cache"
    assert_same_events(local.path, rd.path)
    got, want = load_run(rd.path).llm_calls, load_run(local.path).llm_calls
    keys = ["phase", "episode", "round", "seat", "purpose", "attempt"]
    assert not got[keys].duplicated().any() and len(got) == len(want)
    pd.testing.assert_frame_equal(got[[*keys, "messages", "reply"]].reset_index(drop=True),
                                  want[[*keys, "messages", "reply"]].reset_index(drop=True))


def pd_specs(n: int, model: str, **env: Any) -> list[EpisodeSpec]:
    seats = (Seat(name="a", policy="llm", model=model), Seat(name="b", policy="scripted:tit_for_tat"))
    return [EpisodeSpec(phase=0, index=i, env_id="repeated-matrix-game",
                        env_params={"game": "prisoners_dilemma", "rounds": 3, **env}, seats=seats) for i in range(n)]


def shards_for(model: str, **kw: Any) -> RayShards:
    llm = LLMConfig(structured_outputs="none", cache=False)
    return RayShards(RunnerConfig(kind="ray", shards=1, max_concurrent_episodes=2), run_id="t", seed=0, llm=llm,
                     models={model: ModelOptions(structured_outputs="none", max_retries=0)}, **kw)


def test_failed_episode_raises_its_own_error(cluster: Cluster) -> None:
    spec = pd_specs(1, "fake:first", payoffs="not a matrix")[0]
    ctx = RunContext(run_id="t", seed=0, llm=LLMConfig())
    with pytest.raises(Exception) as local:
        asyncio.run(play_episode(spec, ctx))

    async def on_ray() -> None:
        shards = shards_for("fake:first")
        try:
            await shards.run([spec], lambda out: None)
        finally:
            await shards.aclose()

    with pytest.raises(type(local.value), match=re.escape(str(local.value))):
        asyncio.run(on_ray())


def test_batch_lost_too_often_stops_with_a_clear_error(cluster: Cluster) -> None:
    """Every model request kills the shard that sent it: each attempt of the batch dies with its shard."""
    holder: dict[str, RayShards] = {}

    def kill_shards(_request: Any) -> float:
        for actor in holder["shards"].actors:
            ray.kill(actor, no_restart=True)
        return 0.05

    with FakeOpenAIServer("first", latency=kill_shards) as server:
        model = f"openai:fake@{server.base_url}"
        holder["shards"] = shards = shards_for(model, max_batch_losses=2)
        done: list[Any] = []

        async def go() -> None:
            try:
                await shards.run(pd_specs(2, model), done.append)
            finally:
                await shards.aclose()

        with pytest.raises(ShardLostError, match=r"episodes \(0, \d\) were lost with their shard 2 times; "
                                                 r"last: ActorDiedError"):
            asyncio.run(go())
    assert not done and shards.stats.lost_batches >= 2 and shards.stats.restarts >= 1


def test_cli_starts_a_local_ray(pd_local: Path, tmp_path: Path) -> None:
    """`--runner ray` without an address starts a Ray of its own (not the module's cluster) and stops it."""
    proc = subprocess.run([sys.executable, "-m", "societas.cli", "run", "pd_tournament", "--runner", "ray",
                           "--shards", "2", "--out", str(tmp_path), "--quiet"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = next(tmp_path.iterdir())
    runner = load_run(run_dir).summary["runner"]
    assert runner.pop("start_s") > 0
    assert runner == {"kind": "ray", "shards": 2, "nodes": 1, "lost_batches": 0, "restarted_shards": 0}
    assert_same_events(pd_local, run_dir)


@pytest.mark.slow
def test_worker_node_lost_mid_phase(cluster: Cluster, tmp_path: Path) -> None:
    """A worker node dies while its shards play; their batches are replayed elsewhere, events unchanged.

    Three 1-CPU shards on two 2-CPU workers put shards on both, and the phase
    starts once all three are up, so removing either node loses at least one
    shard with batches in flight. Slow replies (50 ms) make the phase last well
    past the kill, which waits for a fifth of the requests. The module's cluster
    keeps one worker afterwards, so this test comes last.
    """
    workers = [n for n in cluster.list_all_nodes() if n is not cluster.head_node]
    with FakeOpenAIServer("random", latency=0.05) as server:
        cfg = parse_config({
            "name": "node-loss", "seed": 11,
            "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma", "rounds": 6}},
            "population": [{"name": "m", "policy": "llm", "count": 4},
                           {"name": "tft", "policy": "scripted:tft_noise20"},
                           {"name": "random", "policy": "scripted:random"}],
            "model": f"openai:fake@{server.base_url}",
            "llm": {"temperature": 0.7, "structured_outputs": "none", "cache": False},
            "runner": {"kind": "ray", "shards": 3, "max_concurrent_episodes": 3},
            "output_dir": str(tmp_path / "ray"),
        })
        total = 36 * 2 * 6 * 4 // 6  # decisions by the four language-model members
        killed = threading.Event()

        def kill_a_node() -> None:
            deadline = time.monotonic() + 240
            while server.stats.total < total // 5 and time.monotonic() < deadline:
                time.sleep(0.01)
            cluster.remove_node(workers[0])
            killed.set()

        killer = threading.Thread(target=kill_a_node, daemon=True)
        killer.start()
        rd, summary = run_experiment(cfg, progress=False)
        killer.join(timeout=120)
        assert killed.is_set()
        local_cfg = with_runner(cfg, kind="local", shards=1).model_copy(update={"output_dir": str(tmp_path / "l")})
        local, _ = run_experiment(local_cfg, progress=False)
    assert summary["runner"]["nodes"] >= 2
    assert summary["runner"]["lost_batches"] >= 1 and summary["runner"]["restarted_shards"] >= 1
    assert summary["episodes"] == 36
    assert_same_events(local.path, rd.path)
    assert not pq.read_table(rd.path / "llm_calls").to_pandas()[
        ["phase", "episode", "round", "seat", "purpose", "attempt"]].duplicated().any()
