"""The ``faultlab`` command line: a thin shell over the Python API.

Heavy imports (pandas, the model) happen inside the commands so that ``faultlab --help`` is quick.
Bad input of any kind prints one line per problem (``file:line:col: path: message``) on stderr and
exits with code 2; no traceback reaches the user.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

if TYPE_CHECKING:
    from sim.bench import Settings

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


def _seconds(flag: str, text: str) -> float:
    """A positive duration given to ``flag`` (``90s``, ``10m``), or a one-line error."""
    from sim.units import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        _fail(f"{flag}: {exc}")
    if not seconds > 0:
        _fail(f"{flag}: must be greater than 0")
    return seconds


def _with_duration(scenario: Any, duration: str | None) -> Any:
    """The scenario with ``--duration`` applied (and validated again)."""
    from sim.scenario import ScenarioError

    if duration is None:
        return scenario
    length = _seconds("--duration", duration)
    try:
        return scenario.with_overrides({"duration": length})
    except ScenarioError as exc:
        _fail("\n".join(f"--duration {duration}: {p}" for p in exc.problems))


def _check_variant(scenario: Any, variant: str | None, flag: str = "--variant") -> None:
    from sim.scenario import ScenarioError

    try:
        scenario.with_variant(variant)
    except ScenarioError as exc:
        _fail("\n".join(f"{flag} {variant}: {p}" for p in exc.problems))


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
    """Print a scenario's learning goals, narrative and YAML."""
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
    if scenario.goals:
        _out.print("[bold]Learning goals[/bold]")
        for goal in scenario.goals:
            _out.print(f"  • {goal}", markup=False, highlight=False)
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
    from sim.world import run as run_scenario

    loaded = _with_duration(_load(scenario), duration)
    _check_variant(loaded, variant)
    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in ("parquet", "csv", "json")]
    if not chosen:
        _fail("--format: no format given (use parquet, csv, json)")
    if unknown:
        _fail(f"--format: unknown format {', '.join(map(repr, unknown))} (use parquet, csv, json)")
    if out is None:
        result = run_scenario(loaded, variant=variant, seed=seed)
    else:  # with its analysis and the scenario as run, for `faultlab report`
        from sim import experiment

        done = experiment.run(loaded, variant, seed)
        result = done.result
        try:
            done.save(out, tuple(chosen))
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
    only: Annotated[
        str | None,
        typer.Option(
            help="Measurements to run, comma-separated: three-tier, mmc, flagship, memory, "
            "process-pool, dask (default: all)."
        ),
    ] = None,
    duration: Annotated[
        str, typer.Option(help="Simulated time of each three-tier run, e.g. 60s or 5m.")
    ] = "60s",
    repeat: Annotated[
        int, typer.Option(help="Timed runs per model (three-tier, flagship); the best is kept.")
    ] = 3,
    customers: Annotated[int, typer.Option(help="Customers of each M/M/c run.")] = 1_000_000,
    mmc_seeds: Annotated[
        int, typer.Option(help="M/M/c runs, each on its own seed; Wq is their mean.")
    ] = 5,
    reps: Annotated[int, typer.Option(help="Replications of the scale-out lines.")] = 8,
    flagship_duration: Annotated[
        str | None,
        typer.Option(help="Run length of the flagship, memory and scale-out lines (default 5m)."),
    ] = None,
    json_path: Annotated[
        str | None,
        typer.Option("--json", help="Also write the suite as JSON to this file ('-': stdout)."),
    ] = None,
) -> None:
    """The benchmark suite: faultlab against bare SimPy, theory and its targets (issue 8)."""
    import json

    from sim.bench import MEASUREMENTS, SettingError, Settings, parse_only, run_suite

    try:
        settings = Settings(
            only=MEASUREMENTS if only is None else parse_only(only),
            duration=_seconds("--duration", duration),
            repeat=repeat,
            customers=customers,
            mmc_seeds=mmc_seeds,
            reps=reps,
            flagship_duration=None
            if flagship_duration is None
            else _seconds("--flagship-duration", flagship_duration),
        )
    except SettingError as exc:
        _fail(f"--{exc.option}: {exc.message}")
    target = None if json_path in (None, "-") else Path(str(json_path))
    if target is not None and not target.parent.is_dir():
        _fail(f"--json: no directory {target.parent}")
    if target is not None and target.is_dir():
        _fail(f"--json: {target} is a directory (give a file name)")
    to_stdout = json_path == "-"
    suite = run_suite(settings, None if to_stdout else lambda name: _err.print(f"measuring {name}"))
    payload = json.dumps(suite.to_dict(), indent=2, sort_keys=True) + "\n"
    if target is not None:
        try:
            target.write_text(payload)
        except OSError as exc:
            _fail(f"--json: {exc}")
    if to_stdout:
        sys.stdout.write(payload)
    else:
        table = Table(
            "measurement",
            "faultlab",
            "reference",
            "ratio / value",
            "target",
            "result",
            title=_bench_title(settings),
            caption=_machine(suite.load),
        )
        colour = {"pass": "green", "FAIL": "red", "error": "red", "info": "dim"}
        for line in suite.lines:
            *cells, verdict = line.cells()
            table.add_row(*cells, f"[{colour[verdict]}]{verdict}[/{colour[verdict]}]")
        # piped or in a log (80 columns by default), the table keeps one line per measurement
        wide = _out if _out.is_terminal else Console(highlight=False, width=max(_out.width, 150))
        wide.print(table)
        for line in suite.lines:
            if line.error is not None:
                _out.print(f"{line.key}: {line.error}", markup=False)
    if any(line.error is not None for line in suite.lines):
        raise typer.Exit(1)  # a line could not be measured; a missed target is a figure


def _bench_title(settings: Settings) -> str:
    """The table's title: which lines are a best of several timed runs."""
    only = set(settings.only)
    best = []
    if {"three-tier", "flagship"} & only:
        best.append(f"three-tier and flagship: best of {settings.repeat}")
    if {"process-pool", "dask"} & only and settings.scale_out_rounds > 1:
        best.append(f"scale-out: best of {settings.scale_out_rounds}")
    return "faultlab bench" + (f" ({'; '.join(best)})" if best else "")


def _machine(load: tuple[float, float] | None) -> str:
    """The table's caption: the machine, and how busy it was (wall times depend on both)."""
    import os

    cpus = os.cpu_count() or 1
    text = f"{cpus} CPUs"
    if load is not None:
        text += f", load average {load[0]:.1f} before, {load[1]:.1f} after"
        if max(load) > cpus:
            text += ": other work was running, wall times are pessimistic"
    return text


@app.command()
def ui(
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port to serve on (default: 8501).")
    ] = None,
) -> None:
    """Start the Streamlit app: Explorer, Compare, Sweep and Training (as `make ui` does)."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("streamlit") is None:
        _fail("the app needs Streamlit: pip install 'faultlab[ui]'")
    import ui as app_package

    script = Path(app_package.__file__).resolve().parent / "app.py"
    command = [sys.executable, "-m", "streamlit", "run", str(script)]
    if port is not None:
        command += ["--server.port", str(port)]
    try:
        # From the checkout's root, so that its .streamlit/config.toml applies.
        code = subprocess.call(command, cwd=script.parent.parent)
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


# --------------------------------------------------------------------------- experiments

ScenarioArgument = Annotated[str, typer.Argument(help="Scenario YAML file or catalogue name.")]
Reps = Annotated[
    int | None,
    typer.Option(
        help="Replications per variant (and point), on seeds N, N+1... (default: "
        "sim.experiment.REPS, 5).",
        show_default=False,
    ),
]
Jobs = Annotated[
    int | None, typer.Option(help="Parallel workers for process and dask://local (default: cores).")
]
ExecutorOption = Annotated[
    str,
    typer.Option(
        help="serial, process (a local pool; jobs=1 is serial), dask://local or "
        "dask://tcp://HOST:PORT."
    ),
]
Seed = Annotated[int | None, typer.Option(min=0, help="First seed (default: the scenario's).")]
DurationOption = Annotated[str | None, typer.Option(help="Override the run length, e.g. 90s.")]
Hold = Annotated[
    str | None,
    typer.Option(help="Metastability hold time, e.g. 60s (default: two SLO windows)."),
]
Out = Annotated[
    Path | None,
    typer.Option(help="Write runs/events (and stats) as Parquet here; a rerun resumes."),
]
Json = Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")]


def _experiment_options(
    reps: int | None, jobs: int | None, executor: str, hold: str | None
) -> tuple[int, str, float | None]:
    """Check the options every experiment shares: the replications, executor and hold time."""
    from sim.experiment import REPS, ExperimentError, check_executor

    reps = REPS if reps is None else reps
    if reps < 1:
        _fail("--reps: must be at least 1")
    if jobs is not None and jobs < 1:
        _fail("--jobs: must be at least 1")
    try:
        checked = check_executor(executor)
    except ExperimentError as exc:
        _fail(f"--executor: {exc}")
    return reps, checked, None if hold is None else _seconds("--hold", hold)


def _variant_list(scenario: Any, variants: str | None) -> list[str] | None:
    if variants is None:
        return None
    names = [v.strip() for v in variants.split(",") if v.strip()]
    if not names:
        _fail("--variants: no variant given")
    for name in names:
        _check_variant(scenario, name, "--variants")
    return names


def _run_design(what: str, call: Any) -> Any:
    """Run an experiment under a progress bar; bad input found late is one ``error:`` line."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from sim.experiment import ExperimentError
    from sim.scenario import ScenarioError

    columns = (what, BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    quiet = not _err.is_terminal  # a bar is for people; logs and pipes get nothing
    with Progress(*columns, console=_err, transient=True, disable=quiet) as bar:
        task = bar.add_task(what, total=None)
        try:
            return call(lambda done, total: bar.update(task, completed=done, total=total))
        except (ExperimentError, ScenarioError) as exc:
            bar.stop()
            _fail(str(exc))
        except OSError as exc:
            bar.stop()
            _fail(f"--out: {exc}")


def _report_failures(runs: Any) -> None:
    """Failed replications: a warning per distinct error, and exit status 1."""
    failed = runs[runs["error"].notna()]
    if failed.empty:
        return
    for error, group in failed.groupby("error", sort=False):
        _err.print(
            f"warning: {len(group)} of {len(runs)} replications failed: {error}", markup=False
        )
    raise typer.Exit(1)


def _print_records(header: dict[str, Any], frame: Any, key: str) -> None:
    import json

    payload = dict(header)
    payload[key] = json.loads(frame.to_json(orient="records"))
    sys.stdout.write(json.dumps(payload, indent=2, allow_nan=False) + "\n")


def _number(value: Any) -> str:
    return "-" if value is None or value != value else f"{value:.4g}"


def _interval(mean: Any, low: Any, high: Any) -> str:
    """``mean ± half-width``; the mean alone when there is no spread (or no interval)."""
    if low != low or high == low:
        return _number(mean)
    return f"{_number(mean)} ± {_number((high - low) / 2)}"


@app.command()
def compare(
    scenario: ScenarioArgument,
    variants: Annotated[
        str | None,
        typer.Option(help="Comma-separated variants, the reference first (default: all)."),
    ] = None,
    reps: Reps = None,
    jobs: Jobs = None,
    executor: ExecutorOption = "process",
    seed: Seed = None,
    duration: DurationOption = None,
    hold: Hold = None,
    out: Out = None,
    as_json: Json = False,
) -> None:
    """Compare variants on common seeds: means with 95% CIs, paired differences."""
    from sim.experiment import compare as run_compare
    from sim.experiment import shown_variants

    loaded = _with_duration(_load(scenario), duration)
    names = _variant_list(loaded, variants)
    count, checked, hold_time = _experiment_options(reps, jobs, executor, hold)
    comparison = _run_design(
        "replications",
        lambda progress: run_compare(
            loaded,
            names,
            count,
            seed=seed,
            hold=hold_time,
            executor=checked,
            jobs=jobs,
            out=out,
            progress=progress,
        ),
    )
    stats = comparison.stats
    if as_json:
        header = {"scenario": loaded.name, "reference": comparison.reference, "reps": count}
        _print_records(header, stats, "stats")
    else:
        shown = list(dict.fromkeys(stats["variant"]))
        table = Table(
            "metric",
            *shown,
            title=f"{loaded.name}: mean ± 95% CI over {count} seeds; Δ: paired difference "
            f"with {comparison.reference} (* significant)",
        )
        for metric, rows in stats.groupby("metric", sort=False):
            cells = []
            for record in rows.to_dict("records"):
                cell = _interval(record["mean"], record["low"], record["high"])
                if record["diff_n"]:
                    mark = " *" if record["significant"] else ""
                    cell += (
                        f"\nΔ {_interval(record['diff'], record['diff_low'], record['diff_high'])}"
                    )
                    cell += mark
                cells.append(cell)
            table.add_row(str(metric), *cells)
        _out.print(table)
        if out is not None:
            _out.print(f"results written to {out}/")
    if out is not None:
        _write_report(out, loaded, comparison.reference, shown_variants(stats), seed)
    _report_failures(comparison.runs)


def _write_report(out: Path, scenario: Any, reference: str, names: list[str], seed: Any) -> None:
    """Save one run per variant (the first seed) under ``out/runs`` and write the HTML report."""
    from sim import experiment

    for name in names:
        experiment.run(scenario, name, seed).save(out / "runs" / name)
    path = _build_report(out)
    _out.print(f"report written to {path}")


def _build_report(directory: Path) -> Path:
    """Build the HTML report (``ui.report``, imported lazily: ``sim`` never imports ``ui``)."""
    import importlib

    builder: Any = importlib.import_module("ui.report")
    try:
        path: Path = builder.build_report(directory)
    except builder.ReportError as exc:
        _fail(str(exc))
    return path


@app.command()
def report(
    directory: Annotated[
        Path, typer.Argument(help="An output folder of run, compare or sweep (--out).")
    ],
) -> None:
    """Write DIR/report.html: one standalone HTML file with the tables and figures."""
    path = _build_report(directory)
    _out.print(f"report written to {path}")


def _grid(scenario: Any, params: list[str]) -> dict[str, list[Any]]:
    """``--param PATH=V1,V2`` options as a grid, each value checked against the scenario."""
    import yaml

    from sim.scenario import ScenarioError

    grid: dict[str, list[Any]] = {}
    for param in params:
        path, equals, values = param.partition("=")
        path = path.strip()
        if not equals or not path:
            _fail(f"--param {param}: expected PATH=VALUE[,VALUE...]")
        if path in grid:
            _fail(f"--param {path}: given twice")
        texts = [v.strip() for v in values.split(",")]
        if any(not t for t in texts):
            _fail(f"--param {param}: an empty value")
        grid[path] = [yaml.safe_load(t) for t in texts]
        for text, value in zip(texts, grid[path], strict=True):
            try:
                scenario.with_overrides({path: value})
            except ScenarioError as exc:
                _fail("\n".join(f"--param {path}={text}: {p}" for p in exc.problems))
    return grid


@app.command()
def sweep(
    scenario: ScenarioArgument,
    param: Annotated[
        list[str],
        typer.Option(
            help="PATH=V1,V2,... a dotted path (as in variants) and its values; repeat for a "
            "grid (the cartesian product)."
        ),
    ],
    variants: Annotated[
        str | None, typer.Option(help="Comma-separated variants (default: baseline).")
    ] = None,
    reps: Reps = None,
    jobs: Jobs = None,
    executor: ExecutorOption = "process",
    seed: Seed = None,
    duration: DurationOption = None,
    hold: Hold = None,
    out: Out = None,
    as_json: Json = False,
) -> None:
    """Sweep parameters over a grid: every point on common seeds, summarised with 95% CIs."""
    from sim.experiment import sweep as run_sweep

    loaded = _with_duration(_load(scenario), duration)
    names = _variant_list(loaded, variants)
    grid = _grid(loaded, param)
    count, checked, hold_time = _experiment_options(reps, jobs, executor, hold)
    result = _run_design(
        "replications",
        lambda progress: run_sweep(
            loaded,
            grid,
            count,
            variants=names,
            seed=seed,
            hold=hold_time,
            executor=checked,
            jobs=jobs,
            out=out,
            progress=progress,
        ),
    )
    summary = result.summary
    if as_json:
        header = {
            "scenario": loaded.name,
            "grid": grid,
            "reps": count,
            "regimes": result.regimes.to_dict("records"),
        }
        _print_records(header, summary, "summary")
    else:
        shown = ["availability", "latency_p99", "recovered", "metastable", "time_to_recover"]
        table = Table(
            "variant",
            *grid,
            *shown,
            title=f"{loaded.name}: mean ± 95% CI over {count} seeds per point",
        )
        keys = ["variant", *grid]
        for labels, rows in summary.groupby(keys, sort=False):
            by_metric = {r["metric"]: r for r in rows.to_dict("records")}
            cells = [
                _interval(by_metric[m]["mean"], by_metric[m]["low"], by_metric[m]["high"])
                if m in by_metric
                else "-"
                for m in shown
            ]
            table.add_row(*(str(label) for label in labels), *cells)
        _out.print(table)
        regimes = Table(
            "variant",
            *grid,
            "regime",
            "never impacted",
            "recovered",
            "metastable",
            title="metastability map: the regime most replications ended in",
        )
        for record in result.regimes.to_dict("records"):
            regimes.add_row(
                str(record["variant"]),
                *(str(record[path]) for path in grid),
                str(record["regime"]),
                *(str(record[name]) for name in ("never impacted", "recovered", "metastable")),
            )
        _out.print(regimes)
        if out is not None:
            _out.print(f"results written to {out}/")
    _report_failures(result.runs)


@app.command()
def explain(
    scenario: ScenarioArgument,
    variant: Annotated[
        str | None, typer.Option("--variant", "-v", help="Variant to apply (default: none).")
    ] = None,
    seed: Seed = None,
    duration: DurationOption = None,
    hold: Hold = None,
    mechanisms: Annotated[
        bool,
        typer.Option(
            "--mechanisms",
            help="Run the design of each mechanism (OOM killer, circuit breaker, bulkhead, "
            "supervisor) once and print them side by side instead.",
        ),
    ] = False,
    jobs: Jobs = None,
) -> None:
    """Run once and tell the incident: blast radius, recovery, timeline, why requests failed."""
    from sim.analysis import narrate
    from sim.experiment import run as run_once

    loaded = _with_duration(_load(scenario), duration)
    _check_variant(loaded, variant)
    hold_time = None if hold is None else _seconds("--hold", hold)
    if mechanisms:
        if variant is not None:
            _fail("--mechanisms runs every mechanism's design: give no --variant")
        _print_mechanisms(loaded, seed, hold_time, jobs)
        return
    done = run_once(loaded, variant, seed, hold=hold_time)
    title = loaded.name + (f" / {variant}" if variant else "")
    sys.stdout.write(f"{title}, seed {done.result.seed}\n")
    sys.stdout.write("\n".join(narrate(done.analysis)) + "\n")


def _print_mechanisms(
    scenario: Any, seed: int | None, hold: float | None, jobs: int | None
) -> None:
    """One run of each mechanism's design on a common seed, and the side-by-side table."""
    from sim.experiment import compare as compare_designs
    from sim.mechanisms import MechanismError, mechanism_table, mechanism_variants

    if jobs is not None and jobs < 1:
        _fail("--jobs: must be at least 1")
    try:
        columns = mechanism_variants(scenario)
    except MechanismError as exc:
        _fail(str(exc))
    designs = list(dict.fromkeys(columns.values()))
    done = _run_design(
        "designs",
        lambda progress: compare_designs(
            scenario, designs, 1, seed=seed, hold=hold, jobs=jobs, progress=progress
        ),
    )
    _report_failures(done.runs)
    table = mechanism_table(scenario, done.runs, done.events, columns)
    first = int(done.runs["seed"].iloc[0])
    shown = Table("", *(f"{m.value}\n({v})" for m, v in columns.items()), show_lines=True)
    for column in shown.columns:
        column.overflow = "fold"  # every figure of a cell is shown, never an ellipsis
    for row, cells in table.iterrows():
        shown.add_row(str(row), *(str(c) for c in cells))
    _out.print(f"{scenario.name}: four mechanisms side by side, seed {first}", markup=False)
    _out.print(shown)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
