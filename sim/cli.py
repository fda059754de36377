"""The ``faultlab`` command line: a thin shell over the Python API.

Heavy imports (pandas, the model) happen inside the commands so that ``faultlab --help`` is quick.
Bad input of any kind prints one line per problem (``file:line:col: path: message``) on stderr and
exits with code 2; no traceback reaches the user.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="faultlab",
    help="Simulate hosts, cgroups, the OOM killer and fault-tolerance patterns; compare designs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

USAGE_ERROR = 2


def _fail(message: str) -> NoReturn:
    for line in message.splitlines() or [message]:
        _err.print(f"[red]error:[/red] {line}", markup=True, highlight=False)
    raise typer.Exit(USAGE_ERROR)


def _load(source: str) -> Any:
    from sim.scenario import ScenarioError, load_scenario

    try:
        return load_scenario(source)
    except ScenarioError as exc:
        _fail(str(exc))


@app.command("list")
def list_scenarios() -> None:
    """List the scenario catalogue."""
    import scenarios
    from sim.scenario import load_scenario

    table = Table("name", "title", "duration", "services", "variants")
    for name in scenarios.names():
        scenario = load_scenario(name)
        table.add_row(
            name,
            scenario.title,
            f"{scenario.duration:g}s",
            str(len(scenario.services)),
            ", ".join(scenario.variants) or "-",
        )
    _out.print(table)


@app.command()
def show(name: Annotated[str, typer.Argument(help="Catalogue name or YAML file.")]) -> None:
    """Print a scenario's narrative and its YAML."""
    from rich.markdown import Markdown
    from rich.syntax import Syntax

    scenario = _load(name)
    path = Path(name)
    if not path.exists():
        import scenarios

        found = scenarios.catalogue_path(name)
        assert found is not None
        path = found
    _out.print(f"[bold]{scenario.name}[/bold] — {scenario.title}")
    if scenario.description:
        _out.print(Markdown(scenario.description))
    _out.print(Syntax(path.read_text(encoding="utf-8"), "yaml", theme="ansi_dark"))


@app.command()
def validate(file: Annotated[str, typer.Argument(help="Scenario YAML file or catalogue name.")]) -> None:
    """Check a scenario file (and each of its variants); exit 2 with file:line:col on errors."""
    scenario = _load(file)
    variants = ", ".join(scenario.variants) or "none"
    _out.print(
        f"{file}: ok — scenario {scenario.name!r}, {len(scenario.services)} services, "
        f"{len(scenario.hosts)} hosts, {len(scenario.faults)} faults, variants: {variants}"
    )


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()


__all__ = ["app", "json", "main"]
