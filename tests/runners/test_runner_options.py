"""Runner options in configs and on the command line: checked before anything runs (no Ray needed)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from societas.cli import app
from societas.config import load_config


def test_runner_config_and_cli_options(tmp_path: Path) -> None:
    cfg = load_config("pd_tournament", runner={"kind": "ray", "shards": 3, "address": "10.0.0.5:6379"})
    assert (cfg.runner.kind, cfg.runner.shards, cfg.runner.address) == ("ray", 3, "10.0.0.5:6379")
    assert cfg.runner.max_concurrent_episodes is None  # the other runner keys stay (unset: follow the endpoints)
    cli = CliRunner()
    for args, field in ((["--shards", "0"], "runner.shards"), (["--address", "no-port"], "runner.address"),
                        (["--runner", "spark"], "runner.kind"),
                        (["--runner", "local", "--shards", "2"], "runner: shards and address need kind: ray")):
        got = cli.invoke(app, ["run", "pd_tournament", "--out", str(tmp_path), *args])
        assert got.exit_code == 2, got.output
        lines = got.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: pd_tournament: " + field), got.output
    got = cli.invoke(app, ["resume", str(tmp_path / "nope"), "--shards", "2"])
    assert got.exit_code == 2 and "not a run directory" in got.output
    assert not list(tmp_path.iterdir()), "a bad option must stop the run before it writes anything"


def test_shards_or_address_alone_mean_ray_and_local_undoes_them(tmp_path: Path) -> None:
    from societas.cli import _runner_overrides

    cfg = load_config("pd_tournament", runner=_runner_overrides(None, 2, None))
    assert (cfg.runner.kind, cfg.runner.shards, cfg.runner.address) == ("ray", 2, None)
    cfg = load_config("pd_tournament", runner=_runner_overrides(None, None, "auto"))
    assert (cfg.runner.kind, cfg.runner.address) == ("ray", "auto")
    ray_file = tmp_path / "ray.yaml"
    ray_file.write_text(load_config("pd_tournament").model_copy(update={"runner": cfg.runner}).model_dump_json())
    cfg = load_config(ray_file, runner=_runner_overrides("local", None, None))
    assert (cfg.runner.kind, cfg.runner.shards, cfg.runner.address) == ("local", 1, None)
    assert load_config(ray_file).runner.kind == "ray"


def test_servers_join_the_runners_cluster_only_when_it_names_one() -> None:
    from societas.runners.run import model_options

    on_cluster = load_config("pd_tournament", runner={"kind": "ray", "address": "10.0.0.5:6379"})
    servers = model_options(on_cluster, "vllm:org/m").servers
    assert (servers.placement, servers.ray_address) == ("ray", "10.0.0.5:6379")
    for runner in ({"kind": "local"}, {"kind": "ray", "shards": 2}):
        servers = model_options(load_config("pd_tournament", runner=runner), "vllm:org/m").servers
        assert (servers.placement, servers.ray_address) == ("auto", None)
    pinned = load_config("pd_tournament", runner={"kind": "ray", "address": "auto"},
                         llm={"servers": {"placement": "local"}})
    assert model_options(pinned, "vllm:org/m").servers.placement == "local"
