"""The ``faultlab`` command line: a thin shell over the Python API.

Heavy imports (pandas, the model) happen inside the commands so that ``faultlab --help`` is quick.
Bad input of any kind prints one line per problem (``file:line:col: path: message``) on stderr and
exits with code 2; no traceback reaches the user.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

USAGE_ERROR = 2

# typer's usage errors (it vendors click): UsageError's base, found from the public BadParameter
ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


class _OneLineErrors(TyperGroup):
    """Usage errors (unknown option, bad value, missing argument) as one ``error:`` line, exit 2."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; in standalone mode, usage errors are one line and exit 2."""

        def invoke() -> Any:
            return super(_OneLineErrors, self).main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )

        if not standalone_mode:
            return invoke()
        try:
            code = invoke()
        except ClickException as exc:
            error: Any = exc  # click's UsageError: message, ctx, exit_code
            if type(exc).__name__ == "NoArgsIsHelpError":
                sys.exit(0)  # the help is already printed: `faultlab` alone asks for it
            names = []
            ctx = error.ctx
            while ctx is not None and ctx.parent is not None:
                names.append(ctx.info_name)
                ctx = ctx.parent
            where = " ".join(["faultlab", *reversed(names)])
            hint = f" (see '{where} --help')" if error.ctx is not None else ""
            _err.print(f"error: {error.format_message()}{hint}", markup=False)
            sys.exit(error.exit_code)
        except (typer.Abort, KeyboardInterrupt):
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="faultlab",
    cls=_OneLineErrors,
    help="Simulate hosts, cgroups, the OOM killer and fault-tolerance patterns; compare designs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str) -> NoReturn:
    for line in message.splitlines() or [message]:
        _err.print(f"error: {line}", markup=False, highlight=False)
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
    from sim.units import format_duration

    table = Table("name", "duration", "variants", "title")
    table.columns[0].no_wrap = True
    for name in scenarios.names():
        scenario = load_scenario(name)
        table.add_row(
            name,
            format_duration(scenario.duration),
            str(len(scenario.variants)),
            scenario.title,
        )
    _out.print(table)
    _out.print("faultlab show NAME: the narrative and the variants of one scenario")


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
def validate(
    file: Annotated[str, typer.Argument(help="Scenario YAML file or catalogue name.")],
) -> None:
    """Check a scenario file (and each of its variants); exit 2 with file:line:col on errors."""
    scenario = _load(file)
    variants = ", ".join(scenario.variants) or "none"
    _out.print(
        f"{file}: ok — scenario {scenario.name!r}, {len(scenario.services)} services, "
        f"{len(scenario.hosts)} hosts, {len(scenario.faults)} faults, variants: {variants}"
    )


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="Scenario YAML file or catalogue name.")],
    variant: Annotated[
        str | None, typer.Option("--variant", "-v", help="Variant to apply (default: none).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(min=0, help="Random seed (default: the scenario's).")
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help="Override the run length, e.g. 90s or 10m.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write summary, time series and events to this folder.")
    ] = None,
    formats: Annotated[
        str, typer.Option("--format", help="Comma-separated output formats: parquet, csv, json.")
    ] = "parquet,json",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    dmesg: Annotated[
        bool, typer.Option("--dmesg", help="Print the kernel log of the run, as dmesg would.")
    ] = False,
) -> None:
    """Run a scenario once and print its summary."""
    from sim.scenario import ScenarioError
    from sim.units import parse_duration
    from sim.world import run as run_scenario

    loaded = _load(scenario)
    if duration is not None:
        try:
            length = parse_duration(duration)
        except ValueError as exc:
            _fail(f"--duration: {exc}")
        if length <= 0:
            _fail("--duration: must be greater than 0")
        try:
            loaded = loaded.with_overrides({"duration": length})
        except ScenarioError as exc:
            _fail("\n".join(f"--duration {duration}: {p}" for p in exc.problems))
    try:
        loaded.with_variant(variant)
    except ScenarioError as exc:
        _fail("\n".join(f"--variant {variant}: {p}" for p in exc.problems))
    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in ("parquet", "csv", "json")]
    if not chosen:
        _fail("--format: no format given (use parquet, csv, json)")
    if unknown:
        _fail(f"--format: unknown format {', '.join(map(repr, unknown))} (use parquet, csv, json)")
    result = run_scenario(loaded, variant=variant, seed=seed)
    if out is not None:
        try:
            result.save(out, tuple(chosen))
        except OSError as exc:
            _fail(f"--out: cannot write {out}: {exc}")
    if as_json:
        sys.stdout.write(result.to_json() + "\n")
        return
    if dmesg:
        _print_dmesg(result)
        return
    _print_summary(result, out)


def _print_dmesg(result: Any) -> None:
    """The kernel's lines of every host, as ``dmesg`` prints them (``[seconds] line``)."""
    from sim.kernel import KERNEL_KINDS

    events = result.events
    lines = events[events["kind"].isin(KERNEL_KINDS)]
    hosts = lines["host"].nunique()
    for row in lines.itertuples():
        prefix = f"{row.host}: " if hosts > 1 else ""
        sys.stdout.write(f"{prefix}[{row.t:>12.6f}] {row.detail}\n")
    if lines.empty:
        sys.stdout.write("(the kernel logged nothing)\n")


def _print_summary(result: Any, out: Path | None) -> None:
    from sim.units import format_duration

    summary = result.summary
    title = f"{summary['scenario']}" + (f" / {summary['variant']}" if summary["variant"] else "")
    _out.print(
        f"[bold]{title}[/bold]  seed {summary['seed']}, {format_duration(summary['duration'])}: "
        f"{summary['arrivals']} arrivals, availability {_pct(summary['availability'])}, "
        f"p99 {_ms(summary['latency_p99'])}, OOM kills {summary['oom_kills']}, "
        f"restarts {summary['restarts']}"
    )
    table = Table("entity", "requests", "avail.", "p50", "p99", "errors")
    for row in result.services.to_dict("records"):
        errors = {k: row[k] for k in ERROR_COLUMNS if row[k]}
        table.add_row(
            row["entity"] if row["kind"] != "edge" else f"[dim]{row['entity']}[/dim]",
            str(row["requests"]),
            _pct(row["availability"]),
            _ms(row["latency_p50"]),
            _ms(row["latency_p99"]),
            ", ".join(f"{k} {v}" for k, v in errors.items()) or "-",
        )
    _out.print(table)
    if len(result.failures):
        why = Table("class", "where", "cause", "outcome", "count", title="Why requests failed")
        for row in result.failures.head(10).to_dict("records"):
            why.add_row(*(str(row[c]) for c in ("class", "where", "cause", "outcome", "count")))
        _out.print(why)
    if out is not None:
        _out.print(f"results written to {out}/")


ERROR_COLUMNS = (
    "degraded",
    "timeout",
    "shed",
    "rate_limited",
    "bulkhead_full",
    "circuit_open",
    "unavailable",
    "reset",
    "deadline_exceeded",
    "error",
    "dependency",
)


def _pct(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.3%}"


def _ms(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value * 1000:.1f}ms"


@app.command()
def bench(
    duration: Annotated[
        str, typer.Option(help="Simulated time of each run, e.g. 60s or 5m.")
    ] = "60s",
    repeat: Annotated[int, typer.Option(help="Timed runs per model; the best is kept.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Per-hop cost of three-tier (patterns off) against a bare-SimPy model of the same shape."""
    import json

    from sim.bench import PATTERNS_ON_TARGET, SCENARIO, TARGET_RATIO
    from sim.bench import bench as run_bench
    from sim.units import format_bytes, format_duration, parse_duration

    try:
        length = parse_duration(duration)
    except ValueError as exc:
        _fail(f"--duration: {exc}")
    if not length > 0:
        _fail("--duration: must be greater than 0")
    if repeat < 1:
        _fail("--repeat: must be at least 1")
    result = run_bench(length, repeat)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
        return
    table = Table(
        "model",
        "hops",
        f"wall (best of {repeat})",
        "hops/s",
        "µs/hop",
        "peak memory",
        title=f"{SCENARIO}, {format_duration(length)} simulated, seed {result.seed}",
    )
    for side in (result.bare, result.faultlab, result.patterns_on):
        table.add_row(
            side.name,
            str(side.hops),
            f"{side.wall:.3f}s",
            f"{side.hops_per_s:,.0f}",
            f"{side.us_per_hop:.2f}",
            format_bytes(side.peak_bytes),
        )
    _out.print(table)
    for label, ratio, target in (
        ("patterns off", result.ratio, TARGET_RATIO),
        ("patterns on", result.ratio_patterns_on, PATTERNS_ON_TARGET),
    ):
        verdict = "[green]within[/green]" if ratio <= target else "[red]over[/red]"
        _out.print(
            f"ratio, {label} (faultlab / bare time per hop): [bold]{ratio:.2f}x[/bold], "
            f"{verdict} the target of {target:g}x"
        )


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
