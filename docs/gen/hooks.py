"""Reference pages generated from the code at build time, so they cannot drift from it.

MkDocs loads this file as a hook module (`hooks:` in mkdocs.yml). A page asks
for generated content with a marker comment on a line of its own:

    <!-- generated: cli -->          every `societas` command: usage, options, `--help`
    <!-- generated: config -->       every config section from the pydantic models' JSON schema
    <!-- generated: run-files -->    the columns of the run directory's Parquet tables

The config's JSON schema itself is published as `reference/config.schema.json`.
Run as a script to print one of them: `python docs/gen/hooks.py cli|config|run-files|schema`.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
SCHEMA_FILE = "reference/config.schema.json"


# -- the CLI ------------------------------------------------------------------------------------


def cli_markdown() -> str:
    """One section per command: its docstring, a table of arguments and options, and its --help text."""
    import typer
    from typer.testing import CliRunner

    from societas.cli import app

    # Typer builds (and may vendor) its own click objects: use them by duck typing.
    root: Any = typer.main.get_command(app)
    ctx = root.make_context("societas", [], resilient_parsing=True)
    parts = [_help_block("societas --help", _help(app, [], CliRunner))]
    for name in root.list_commands(ctx):
        cmd = root.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        sub = cmd.make_context(name, [], parent=ctx, resilient_parsing=True)
        usage = " ".join(["societas", name, *cmd.collect_usage_pieces(sub)])
        parts.append(f"## `societas {name}`\n\n{_clean(cmd.help or '')}\n\n```text\n{usage}\n```\n")
        rows = [_param_row(p, sub) for p in cmd.params if p.name != "help"]
        if rows:
            parts.append("| argument / option | type | default | description |\n|---|---|---|---|\n"
                         + "\n".join(rows) + "\n")
        parts.append(_help_block(f"societas {name} --help", _help(app, [name], CliRunner)))
    return "\n".join(parts)


def _help(app: Any, args: list[str], runner_cls: Any) -> str:
    result = runner_cls().invoke(app, [*args, "--help"], prog_name="societas", terminal_width=100, color=False)
    return "\n".join(line.rstrip() for line in result.output.splitlines()).strip("\n")


def _help_block(title: str, text: str) -> str:
    body = "\n".join(f"    {line}" if line else "" for line in text.splitlines())
    return f'??? note "`{title}`"\n\n    ```text\n{body}\n    ```\n'


def _param_row(param: Any, ctx: Any) -> str:
    argument = param.param_type_name == "argument"
    name = f"`{param.name.upper()}`" if argument else " / ".join(
        f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    default = "required" if param.required else ("" if param.default in (None, ()) else f"`{param.default}`")
    if isinstance(param.default, bool) and not argument:
        default = f"`{param.opts[0] if param.default else (param.secondary_opts or ['false'])[0]}`"
    help_text = _cell(getattr(param, "help", "") or "")
    return f"| {name} | {_type_name(param, ctx)} | {default} | {help_text} |"


def _type_name(param: Any, ctx: Any) -> str:
    """The parameter's type as `--help` shows it, across typer versions (some vendor click)."""
    kind = getattr(param, "type", None)
    if kind is not None:
        return str(getattr(kind, "name", kind))
    display = getattr(param, "display_type", None)
    text = display(ctx) if callable(display) else display
    return str(text or "").strip("<>") or "text"


# -- the config schema --------------------------------------------------------------------------


def config_schema() -> dict[str, Any]:
    from societas.config import ExperimentConfig

    return ExperimentConfig.model_json_schema()


def config_markdown() -> str:
    """The top-level config and each nested section as a table: field, type, default, constraints."""
    schema = config_schema()
    defs: dict[str, Any] = schema.get("$defs", {})
    order = ["ExperimentConfig", *_reachable(schema, defs)]
    sections = []
    for title in order:
        model = schema if title == "ExperimentConfig" else defs[title]
        where = "the top level of a config file" if title == "ExperimentConfig" else _paths(title, schema, defs)
        header = f"## {title}\n\n*Used at:* {where}\n\n{_clean(model.get('description', ''))}\n"
        rows = []
        required = set(model.get("required", ()))
        for field, spec in model.get("properties", {}).items():
            default = "required" if field in required else _default(spec)
            rows.append(f"| `{field}` | {_type(spec)} | {default} | {_constraints(spec)} |")
        table = "| field | type | default | constraints |\n|---|---|---|---|\n" + "\n".join(rows)
        sections.append(f"{header}\n{table}\n")
    return "\n".join(sections)


def _reachable(schema: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    """Nested sections in the order a reader meets them (depth first from the top level)."""
    seen: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name not in seen and name in defs:
                    seen.append(name)
                    visit(defs[name].get("properties", {}))
            for key, value in node.items():
                if key != "$defs":
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(schema.get("properties", {}))
    return seen + sorted(set(defs) - set(seen))


def _paths(title: str, schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """Where a section appears, as dotted config keys (population[] for list items)."""
    found: list[str] = []

    def walk(model: dict[str, Any], prefix: str, depth: int) -> None:
        if depth > 4:
            return
        for field, spec in model.get("properties", {}).items():
            for ref, suffix in _refs(spec):
                path = f"{prefix}{field}{suffix}"
                if ref == title:
                    found.append(f"`{path}`")
                elif ref in defs:
                    walk(defs[ref], f"{path}.", depth + 1)

    walk(schema, "", 0)
    return ", ".join(dict.fromkeys(found)) or "(not used by the top level)"


def _refs(spec: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    if "$ref" in spec:
        out.append((spec["$ref"].rsplit("/", 1)[-1], ""))
    for option in spec.get("anyOf", []) + spec.get("oneOf", []):
        out.extend(_refs(option))
    if "items" in spec and isinstance(spec["items"], dict):
        out.extend((ref, f"[]{suffix}") for ref, suffix in _refs(spec["items"]))
    if isinstance(spec.get("additionalProperties"), dict):
        out.extend((ref, f".NAME{suffix}") for ref, suffix in _refs(spec["additionalProperties"]))
    return out


def _type(spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "const" in spec:
        return f"`{json.dumps(spec['const'])}`"
    if "enum" in spec:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in spec["enum"])
    for key in ("anyOf", "oneOf"):
        if key in spec:
            return " \\| ".join(dict.fromkeys(_type(s) for s in spec[key]))
    kind = spec.get("type", "any")
    if kind == "array":
        if "prefixItems" in spec:
            return "[" + ", ".join(_type(s) for s in spec["prefixItems"]) + "]"
        return f"list of {_type(spec.get('items', {}))}"
    if kind == "object":
        extra = spec.get("additionalProperties")
        return f"mapping of {_type(extra)}" if isinstance(extra, dict) else "mapping"
    return {"null": "null", "string": "string", "integer": "integer", "number": "number",
            "boolean": "boolean"}.get(kind, str(kind))


def _default(spec: dict[str, Any]) -> str:
    if "default" not in spec:
        return ""
    return f"`{json.dumps(spec['default'])}`"


def _constraints(spec: dict[str, Any]) -> str:
    names = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<",
             "minLength": "length >=", "maxLength": "length <=", "minItems": "items >=", "maxItems": "items <="}
    out = [f"{sym} {spec[key]}" for key, sym in names.items() if key in spec]
    if "pattern" in spec:
        out.append(f"matches `{spec['pattern']}`")
    for option in spec.get("anyOf", []):
        out.extend(c for c in [_constraints(option)] if c)
    return ", ".join(out)


# -- the run directory --------------------------------------------------------------------------


def run_files_markdown() -> str:
    """Each Parquet table a run writes, with its columns and Arrow types, from the runner's schemas."""
    import importlib

    tables = [("events/part-*.parquet", "runners.rundir", "EVENT_SCHEMA", "one row per decision"),
              ("llm_calls/part-*.parquet", "runners.rundir", "LLM_CALL_SCHEMA", "one row per model request"),
              ("episodes/part-*.parquet", "runners.rundir", "EPISODE_SCHEMA", "one row per seat per episode"),
              ("lineage/phase-*.parquet", "societies.evolution", "LINEAGE_SCHEMA",
               "evolving societies only: who lived in each phase, and their parents")]
    parts = []
    for path, module, name, what in tables:
        try:
            schema = getattr(importlib.import_module(f"societas.{module}"), name)
        except (ImportError, AttributeError):
            continue  # a table this version does not write
        rows = "\n".join(f"| `{f.name}` | {f.type} |" for f in schema)
        parts.append(f"### `{path}`\n\n{what.capitalize()} (`societas.{module}.{name}`).\n\n"
                     f"| column | Arrow type |\n|---|---|\n{rows}\n")
    return "\n".join(parts)


# -- helpers and MkDocs hooks -------------------------------------------------------------------


def _clean(text: str) -> str:
    """A docstring as Markdown: dedented, with `single` backquotes kept."""
    import inspect

    return inspect.cleandoc(text)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


GENERATORS: dict[str, Callable[[], str]] = {
    "cli": cli_markdown,
    "config": config_markdown,
    "run-files": run_files_markdown,
}


def render(markdown: str) -> str:
    """Replace every marker line with its generated Markdown; an unknown marker is an error."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"unknown generated section {name!r}; known: {', '.join(sorted(GENERATORS))}")
        return GENERATORS[name]().rstrip()

    return MARKER.sub(fill, markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return render(markdown)


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, SCHEMA_FILE, content=json.dumps(config_schema(), indent=2) + "\n"))
    return files


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "cli"
    print(json.dumps(config_schema(), indent=2) if what == "schema" else GENERATORS[what]())
