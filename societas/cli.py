"""The `societas` command: run, resume, list, analyze, report, view."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Multi-agent language-model simulation: run studies, analyze what emerges.")
# Piped output keeps whole tables rather than folding them to 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 400)


# Exit codes (README, "Exit codes"): whose failure it was.
EXIT_BAD_INPUT = 2  # a config, path, argument or missing optional dependency
EXIT_WORLD = 3  # an endpoint down, a disk full, a lost cluster: resumable
EXIT_INTERRUPTED = 130
EXIT_BUG = 1  # only for a bug in societas


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def _guard(what: str) -> Iterator[None]:
    """Every failure as one line with the exit code that says whose it is; no traceback.

    SOCIETAS_DEBUG=1 lets an unexpected error (a bug) raise with its traceback.
    """
    from societas.config import ConfigError
    from societas.errors import BadInput
    from societas.llm.base import ModelError
    from societas.runners.ray_runner import RayRunnerError
    from societas.runners.run import RunInterrupted, RunStopped

    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except (ConfigError, BadInput) as exc:
        _fail(_one_line(exc))
    except RunStopped as exc:
        _fail(f"run stopped: {_one_line(exc)}", EXIT_WORLD)
    except ModelError as exc:  # before anything was written: the probe, or a missing API key
        text = _one_line(exc)
        missing_key = "no API key" in text
        _fail(f"{what}: model: {text}" + ("" if missing_key else "; nothing was written"),
              EXIT_BAD_INPUT if missing_key else EXIT_WORLD)
    except RayRunnerError as exc:
        _fail(_one_line(exc), EXIT_WORLD)
    except RunInterrupted as exc:
        _fail(str(exc), EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except OSError as exc:  # a path given that cannot be written or read
        if exc.errno is None:  # raised with a message of ours ("not a run directory")
            _fail(_one_line(exc))
        where = f" {exc.filename}" if exc.filename else ""
        _fail(f"{what}: cannot use{where}: {exc.strerror or _one_line(exc)}")
    except Exception as exc:
        if os.environ.get("SOCIETAS_DEBUG"):
            raise
        _fail(f"internal error ({type(exc).__name__}: {_one_line(exc)}): a bug in societas; rerun with "
              "SOCIETAS_DEBUG=1 for the traceback and report it", EXIT_BUG)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _print_run(run_dir: Path, summary: dict[str, Any]) -> None:
    out.print(f"run directory: [bold]{run_dir}[/]", highlight=False)
    out.print(f"{summary['episodes']} episodes, {summary['decisions']} decisions, "
              f"{summary['llm_calls']} model calls, {summary['invalid_actions']} invalid actions, "
              f"{summary['wall_s']:.1f} s", highlight=False)
    fb = summary.get("fallbacks") or {}
    if fb:
        out.print(f"invalid fallbacks: {fb['share']:.1%} of decisions", highlight=False)
    for who, share in (fb.get("not_interpretable") or {}).items():
        out.print(f"[bold red]not interpretable:[/] {share:.0%} of {who}'s decisions are fallbacks "
                  f"(limit {fb['limit']:.0%})", highlight=False)
    non_lm = summary["non_language_model_agents"]
    if non_lm:
        out.print("not language models: " + ", ".join(f"{n} ({p})" for n, p in non_lm.items()),
                  highlight=False)
    if summary["language_model_agents"]:
        out.print("language-model agents: " + ", ".join(summary["language_model_agents"]), highlight=False)
    if summary["skipped_agents"]:
        out.print("skipped (no --model given): " + ", ".join(summary["skipped_agents"]), highlight=False)
    out.print(f"next: societas analyze {run_dir}", highlight=False)


RunnerOption = Annotated[str | None, typer.Option(
    "--runner", help="Where episodes run: local (one process) or ray (shards on this machine or a Ray cluster).")]
ShardsOption = Annotated[int | None, typer.Option(
    help="Ray actors that play a phase's episodes side by side (implies --runner ray).")]
AddressOption = Annotated[str | None, typer.Option(
    help="A running Ray cluster: auto, or HOST:PORT of `ray start --head` (implies --runner ray); "
         "without it Ray starts on this machine.")]


def _runner_overrides(runner: str | None, shards: int | None, address: str | None) -> dict[str, Any] | None:
    """The runner options as an override of the config's runner section; --shards or --address alone mean ray."""
    if runner is None and shards is None and address is None:
        return None
    over: dict[str, Any] = {"kind": runner or "ray"}
    if over["kind"] == "local":  # a config written for Ray, played in one process
        over.update(shards=1, address=None)
    if shards is not None:
        over["shards"] = shards
    if address is not None:
        over["address"] = address
    return over


@app.command()
def run(
    config: Annotated[str, typer.Argument(help="YAML config file, or the name of a bundled config.")],
    model: Annotated[str | None, typer.Option(help="Model spec for language-model agents, "
                                              "e.g. openai:gpt-4o-mini or openai:NAME@http://HOST:PORT/v1.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the config's seed.")] = None,
    seeds: Annotated[str | None, typer.Option(help="Seeds to sweep, e.g. 0,1,2 or 0-9: one run per seed, "
                                              "side by side (replaces the config's sweep.seeds).")] = None,
    out_dir: Annotated[str | None, typer.Option("--out", help="Folder for run directories.")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    runner: RunnerOption = None,
    shards: ShardsOption = None,
    address: AddressOption = None,
) -> None:
    """Run a study from a config and write a run directory.

    A config with a `sweep` section (or `--seeds`) plays every run of the sweep
    side by side, each in its own run directory under one sweep directory.
    `--model` and `--seed` then pin the sweep's model or seed axis to one value.
    """
    from societas.config import load_config
    from societas.runners.run import run_experiment

    with _guard(config):
        cfg = load_config(config, model=model, seed=seed, output_dir=out_dir,
                          runner=_runner_overrides(runner, shards, address))
        if cfg.sweep is not None or seeds is not None:
            _run_sweep(cfg, config, model=model, seed=seed, seeds=seeds, quiet=quiet)
            return
        rd, summary = run_experiment(cfg, progress=not quiet)
    _print_run(rd.path, summary)


@app.command()
def resume(run_dir: Annotated[Path, typer.Argument(help="A run or sweep directory that stopped early.")],
           quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
           runner: RunnerOption = None, shards: ShardsOption = None, address: AddressOption = None) -> None:
    """Finish an interrupted run; completed episodes are kept, the rest replayed from their seeds.

    Given a sweep directory, every run of the sweep without a summary is finished.
    """
    from societas.runners.run import resume_run

    with _guard(str(run_dir)):
        if (run_dir / "sweep.yaml").is_file():
            _resume_sweep(run_dir, quiet=quiet, runner=_runner_overrides(runner, shards, address))
            return
        rd, summary = resume_run(run_dir, progress=not quiet, runner=_runner_overrides(runner, shards, address))
    if summary.get("already_complete"):
        out.print(f"{rd.path}: already complete; nothing to do", highlight=False)
        return
    _print_run(rd.path, summary)


def _run_sweep(cfg: Any, source: str, *, model: str | None, seed: int | None, seeds: str | None,
               quiet: bool) -> None:
    """Every run of a sweep side by side; a line per run as it starts and ends, then the totals."""
    from societas.sweeps import parse_seeds, pin_axes, run_sweep

    where: list[Path] = []
    cfg = pin_axes(cfg, model=model, seed=seed, seeds=None if seeds is None else parse_seeds(seeds),
                   source=source)
    try:
        result = run_sweep(cfg, source=source, on_update=_sweep_progress(where, quiet))
    except KeyboardInterrupt:
        _fail(f"interrupted; finish the sweep with `societas resume {where[0] if where else 'SWEEP_DIR'}`",
              EXIT_INTERRUPTED)
    _print_sweep_result(result, shown=bool(where))


def _resume_sweep(path: Path, *, quiet: bool, runner: dict[str, Any] | None) -> None:
    from societas.sweeps import resume_sweep

    where: list[Path] = []
    try:
        result = resume_sweep(path, on_update=_sweep_progress(where, quiet), runner=runner)
    except KeyboardInterrupt:
        _fail(f"interrupted; finish the sweep with `societas resume {path}`", EXIT_INTERRUPTED)
    _print_sweep_result(result, shown=bool(where))


def _sweep_progress(where: list[Path], quiet: bool) -> Any:
    """Prints the sweep directory once, then each run's status as it changes (unless quiet)."""

    def update(path: Path, row: dict[str, Any]) -> None:
        if not where:
            where.append(path)
            out.print(f"sweep directory: [bold]{path}[/]", highlight=False)
        if quiet:
            return
        detail = ""
        if row["status"] == "complete":
            detail = f"  {row['decisions']} decisions, {row['wall_s']:.1f} s"
        elif row["error"]:
            detail = f"  {row['error']}"
        out.print(f"{row['status']:<9} {row['name']}{detail}", highlight=False, markup=False, soft_wrap=True)

    return update


def _print_sweep_result(result: Any, *, shown: bool) -> None:
    from collections import Counter

    runs = result.runs
    if not shown:
        out.print(f"sweep directory: [bold]{result.path}[/]", highlight=False)
    counts = Counter(r["status"] for r in runs)
    out.print(f"{len(runs)} runs: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
              highlight=False)
    for r in result.failed:
        out.print(f"{r['status']}: {r['name']}" + (f": {r['error']}" if r["error"] else ""), highlight=False,
                  markup=False, soft_wrap=True)
    if result.failed:
        world = all(str(r["error"] or "").startswith(("RunStopped", "ModelError")) for r in result.failed)
        _fail(f"{len(result.failed)} of {len(runs)} runs did not complete; rerun them with "
              f"`societas resume {result.path}`", EXIT_WORLD if world else EXIT_BUG)
    out.print(f"next: societas analyze {result.path}", highlight=False)


@app.command("list")
def list_all() -> None:
    """Environments, scripted strategies, replay policies, model providers and bundled configs.

    Installed plug-ins are imported and checked here; one that cannot be used is
    reported in one line and left out, and everything else is listed as usual.
    """
    from societas.agents.factory import describe_scripted_strategies
    from societas.agents.registry import load_plugins, policy_kinds
    from societas.agents.replay import REPLAY_POLICIES, describe_replay_suites
    from societas.config import bundled_configs
    from societas.environments import registered
    from societas.environments.registry import validate_plugins
    from societas.llm.specs import providers, validate_backend_plugins
    from societas.plugins import failures

    broken_envs = validate_plugins()
    load_plugins()
    broken_providers = validate_backend_plugins()
    t = Table("environment", "description", title="Environments", title_justify="left")
    for env_id, entry in sorted(registered().items()):
        if env_id not in broken_envs:
            t.add_row(env_id, entry.description)
    out.print(t)
    t = Table("policy", "description", title="Scripted strategies", title_justify="left")
    for name, desc in describe_scripted_strategies().items():
        t.add_row(f"scripted:{name}", desc)
    out.print(t)
    t = Table("policy", "description", title="Replay policies (recorded, not live models)", title_justify="left")
    for name, entry in sorted(REPLAY_POLICIES.items()):
        t.add_row(f"replay:{name}", entry.description)
    for name, desc in describe_replay_suites().items():
        t.add_row(f"replay:{name}", desc)
    out.print(t)
    kinds = policy_kinds()
    if kinds:
        t = Table("policy", "description", title="Plug-in policy kinds", title_justify="left")
        for kind, pk in kinds.items():
            if pk.names is None:
                t.add_row(f"{kind}:NAME", pk.description)
            for name, desc in sorted((pk.names or {}).items()):
                t.add_row(f"{kind}:{name}", desc or pk.description)
        out.print(t)
    usable = [p for p in providers() if p not in broken_providers]
    out.print("Model providers: " + ", ".join(f"{p}:" for p in usable) + "   (policy: llm + --model)")
    out.print("Bundled configs: " + ", ".join(bundled_configs()))
    for failure in failures():
        out.print(str(failure), style="yellow", markup=False, highlight=False, soft_wrap=True)


def _run_paths(paths: list[Path]) -> list[Path]:
    """Run directories named directly or through a sweep directory (its runs, in index order)."""
    from societas.analysis.load import load_sweep

    runs: list[Path] = []
    for path in paths:
        if (path / "sweep.yaml").is_file():
            runs += [Path(d) for d in load_sweep(path)["run_dir"]]
        elif (path / "config.yaml").is_file():
            runs.append(path)
        else:
            _fail(f"{path}: not a run or sweep directory (no config.yaml or sweep.yaml)")
    return runs


def _no_events(path: Path) -> None:
    _fail(f"{path}: the run has no events yet; play it with `societas resume {path}`")


@app.command()
def analyze(run_dirs: Annotated[list[Path], typer.Argument(help="A run directory, several, or a sweep directory.")],
            strategies: Annotated[bool, typer.Option(help="List the strategy texts alive in each generation.")]
            = False,
            individual_bias: Annotated[int, typer.Option(
                "--individual-bias", metavar="N", help="Naming game: also ask the run's model the first-round "
                "prompt N times, names shuffled, and show each name's share (individual bias).")] = 0) -> None:
    """The key tables of a run: per-agent cooperation and payoffs; per generation for evolving societies.

    For a sweep directory: one row per run with its model, seed, grid values, cooperation and mean reward.
    Several runs: each run's tables in turn.
    """
    from societas.analysis import load_run

    with _guard("analyze"):
        if len(run_dirs) == 1 and (run_dirs[0] / "sweep.yaml").is_file():
            _print_sweep(run_dirs[0])
            return
        for path in _run_paths(run_dirs):
            r = load_run(path)
            if r.events.empty:
                _no_events(r.path)
            game = (r.config.get("environment") or {}).get("id")
            if individual_bias and game != "naming-game":  # said before the tables, not after them
                _fail(f"{r.path}: individual bias is measured for naming-game runs; this run plays {game}")
            _analyze_one(r, strategies)
            if individual_bias:
                _print_individual_bias(r, individual_bias)


def _analyze_one(r: Any, strategies: bool) -> None:
    if strategies:
        _print_strategies(r)
    else:
        _print_section(r)
    if r.summary is None:
        out.print(f"[yellow]run incomplete: finish it with `societas resume {escape(str(r.path))}`[/]",
                  highlight=False)


def _print_individual_bias(r: Any, trials: int) -> None:
    from rich.table import Table

    from societas.analysis.norms.naming_bias import for_run
    from societas.config import parse_config

    spec, table = for_run(parse_config(r.config, source=str(r.path / "config.yaml")), trials)
    valid, invalid = int(table["valid"].iloc[0]), int(table["invalid"].iloc[0])
    shown = Table(title=f"individual bias of {spec}: {trials} first-round prompts, names shuffled "
                        f"({invalid} invalid)", title_justify="left")
    for column in ("name", "count", "share", "95% interval"):
        shown.add_column(column, justify="left" if column == "name" else "right")
    for name, count, share, low, high, *_ in table.itertuples(index=False):
        shown.add_row(name, str(count), f"{share:.3f}" if valid else "-",
                      f"{low:.3f}-{high:.3f}" if valid else "-")
    out.print(shown)


@app.command()
def report(run_dirs: Annotated[list[Path], typer.Argument(help="One run directory, several to compare, or a "
                                                          "sweep directory (a comparison of its runs).")],
           output: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write: a folder or a .html "
                                                       "file. Default: the run directory for one run, the "
                                                       "sweep directory for a sweep, beside the runs for a "
                                                       "comparison.")] = None) -> None:
    """Write a self-contained HTML report (tables and figures inline) and print its path."""
    from societas.analysis.report import write_report

    with _guard("report"):
        paths = _run_paths(run_dirs)
        if not paths:
            _fail(f"{run_dirs[0]}: the sweep has no runs")
        for path in paths:
            if not any((path / "events").glob("part-*.parquet")):
                _no_events(path)
        if output is None and len(run_dirs) == 1 and (run_dirs[0] / "sweep.yaml").is_file():
            output = run_dirs[0] / "report.html"
        written = write_report(paths, output)
    out.print(str(written), highlight=False, markup=False, soft_wrap=True)


@app.command()
def view(runs_dir: Annotated[Path, typer.Argument(help="A folder of runs and sweeps (or one run or sweep "
                                                   "directory).")] = Path("runs"),
         port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8765,
         prices: Annotated[Path | None, typer.Option(help="YAML or JSON price table: model spec -> [prompt, "
                                                     "completion] (or [.., .., cached prompt]) USD per million "
                                                     "tokens; adds the cost so far.")] = None) -> None:
    """Watch and read runs in a browser: the runs list, live reports, transcripts, comparisons.

    Serves a local web app on 127.0.0.1 and prints its URL; it only reads the
    run directories, so runs play on undisturbed. Ctrl-C stops it.
    """
    from societas.errors import MissingExtra

    with _guard("view"):
        if not runs_dir.is_dir():
            _fail(f"{runs_dir}: not a folder (give the folder that holds the run directories)")
        try:
            import fastapi  # noqa: F401
            import jinja2  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError:
            raise MissingExtra("societas view", "view") from None
        from societas.view.app import serve
        from societas.view.cost import load_prices

        table = load_prices(prices) if prices is not None else None
        try:
            serve(runs_dir, port, prices=table, announce=lambda url: out.print(
                f"societas view: {url}  (runs in {runs_dir.resolve()}; Ctrl-C stops)", highlight=False,
                markup=False, soft_wrap=True))
        except KeyboardInterrupt:
            pass


def _fmt(x: float, spec: str = ".2f") -> str:
    return "-" if x != x else format(x, spec)


def _print_sweep(path: Path) -> None:
    """One row per run: its sweep point, status, cooperation and mean reward per decision."""
    from societas.analysis.load import load_sweep, load_sweep_events, sweep_grid

    index = load_sweep(path)
    grid = sweep_grid(path)
    events = load_sweep_events(path, columns=["cooperated", "reward"])
    coop = events.groupby("run_id")["cooperated"].apply(lambda s: s.dropna().astype(float).mean())
    reward = events.groupby("run_id")["reward"].mean()
    decisions = events.groupby("run_id").size()  # what is on disk, finished or not
    models = index["model"].notna().any()
    t = Table("run", *(["model"] if models else []), "seed", *grid, "status", "decisions", "cooperation",
              "reward/decision", title=f"{path.name}: {len(index)} runs", title_justify="left")
    for cells in index.to_dict("records"):
        name = cells["name"]
        t.add_row(name, *([str(cells["model"])] if models else []), str(cells["seed"]),
                  *(_grid_cell(cells[g]) for g in grid), cells["status"], str(int(decisions.get(name, 0))),
                  _fmt(float(coop.get(name, float("nan")))), _fmt(float(reward.get(name, float("nan")))))
    out.print(t)
    _print_naming_sweep(path)
    unfinished = int((index["status"] != "complete").sum())
    if unfinished:
        out.print(f"[yellow]{unfinished} runs incomplete: finish them with `societas resume {path}`[/]")


def _grid_cell(value: Any) -> str:
    """A grid value as a cell: a population as its members and counts ("committed x2 + player x22")."""
    if isinstance(value, str) and value.startswith("[{"):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, list) and value and all(isinstance(m, dict) and "name" in m for m in value):
        return " + ".join(f"{m['name']} x{m.get('count', 1)}" for m in value)
    return str(value)


def _print_naming_sweep(path: Path) -> None:
    """A naming-game sweep with committed minorities: adoption and flips per minority size, across runs."""
    from societas.analysis.load import load_sweep_events
    from societas.analysis.sections.naming import ENV, sweep_view

    events = load_sweep_events(path, columns=["env", "agent", "action", "policy", "valid", "model"])
    if events.empty or not (events["env"] == ENV).any():
        return
    view = sweep_view(events)
    if view is not None:
        _print_view(view, path.name)
        out.print(view.intro, highlight=False, markup=False, soft_wrap=True)


def _print_strategies(r: Any) -> None:
    from societas.analysis.donor import strategies_by_generation

    if r.lineage.empty:
        _fail(f"{r.path}: not an evolving society (no lineage)", 1)
    table = strategies_by_generation(r.lineage).dropna(subset=["strategy"])
    t = Table("generation", "members", "survivors", "strategy", title=f"{r.run_id}: strategies by generation",
              title_justify="left")
    for (gen, text), g in table.groupby(["generation", "strategy"], sort=True):
        t.add_row(str(gen), str(len(g)), str(int(g["survived"].sum())), text)
    out.print(t)


def _print_section(r: Any) -> None:
    """The run's study section (the same tables, names and intervals as the report), each with its standing."""
    from societas.analysis.sections import section_for

    section = section_for(r)
    if section is None:
        _fail(f"{r.path}: no analysis applies to this run", 1)
    _print_view(section.build(r), r.run_id)


def _print_view(view: Any, where: str) -> None:
    """A section's tables, each standing (fallback shares and caveats) under its first table."""
    if view.intro and not view.tables:
        out.print(view.intro, highlight=False)
    shown = None
    for table in view.tables:
        t = Table(*table.labels(), title=f"{where}: {table.title}", title_justify="left")
        for cells in table.cells():
            t.add_row(*cells)
        out.print(t)
        if table.notes:  # what the report prints under the table (definitions, intervals, sources)
            out.print(f"{table.notes}.", highlight=False, markup=False, soft_wrap=True)
        if table.standing is not None and table.standing is not shown:  # once per standing, under its first table
            shown = table.standing
            out.print(table.standing.summary(), highlight=False, markup=False, soft_wrap=True)
            for caveat in table.caveats():
                out.print(caveat, style="bold red", highlight=False, markup=False, soft_wrap=True)


def main() -> None:
    try:
        app()
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
