"""`malles run` / `malles demo`: start or resume a scenario of any kind and show its event stream with rich."""

from __future__ import annotations

import time

import typer
from rich.console import Console

from malles_graph.scenario import Scenario

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # as a shell reports a program stopped by ctrl+c


def run_any(scenario: Scenario, *, resume: str | None, store: str | None, console: Console, seeds: int = 1) -> None:
    """Run (or resume) ``scenario``; exit code 1 when the run failed, 130 when it was interrupted."""
    from malles_graph.graphs.population.executor import shutdown

    try:  # a Ray cluster started for this command (executor: ray, no address) stops with it
        if seeds > 1:
            run_seeds(scenario, seeds, store, console)
        else:
            run_one(scenario, resume=resume, store=store, console=console)
    finally:
        shutdown()


def run_one(scenario: Scenario, *, resume: str | None, store: str | None, console: Console) -> None:
    from malles_graph.cli.run_view import RunPrinter, rounds_table, summary_table
    from malles_graph.cli.tables import print_table
    from malles_graph.graphs.run import resume_run, start_run

    handle = resume_run(resume, store_url=store, scenario=scenario) if resume else start_run(scenario, store_url=store)
    _sigterm_interrupts()
    try:
        with RunPrinter(console) as printer:
            summary = handle.run(printer)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]: what was decided is stored; continue with `--resume {handle.run_id}`")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    print_table(console, rounds_table(summary.rounds))
    print_table(console, summary_table(summary))
    console.print(
        f"wrote: {summary.store_url} (run {summary.run_id}); "
        f"see it with `malles show {summary.run_id}`, export with `malles export {summary.run_id}`"
    )
    console.print(time_line(handle.first_call_at, time.perf_counter()))
    exit_for_status(summary.status)


def exit_for_status(status: str) -> None:
    """A run that did not finish ends the command with exit code 1 (failed) or 130 (stopped)."""
    if status == "failed":
        raise typer.Exit(EXIT_FAILED)
    if status != "finished":
        raise typer.Exit(EXIT_INTERRUPTED)


def time_line(first_call_at: float | None, ended_at: float) -> str:
    """Where the command's time went: start-up (imports, data, memory, model load) until the first LLM call, then
    the run (issue 18: the demo's own run under 60 s)."""
    from malles_graph.cli import STARTED

    total = ended_at - STARTED
    if first_call_at is None:
        return f"time: {total:.1f} s (no LLM call in this process)"
    startup = first_call_at - STARTED
    return (
        f"time: {total:.1f} s = start-up {startup:.1f} s (to the first LLM call) + run {ended_at - first_call_at:.1f} s"
    )


def _sigterm_interrupts() -> None:
    """SIGTERM (a supervisor, `kill`) stops the run like ctrl+c: recorded as interrupted, resumable."""
    import signal
    import threading

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def run_seeds(scenario: Scenario, seeds: int, store: str | None, console: Console) -> None:
    """One run per seed (seed, seed+1, ...), then the spread of the final outcomes."""
    from malles_graph.cli.run_view import RunPrinter, spread_table
    from malles_graph.cli.tables import print_table
    from malles_graph.graphs.run import run_seeds as run_all

    seed_list = [scenario.seed + i for i in range(seeds)]
    with RunPrinter(console, show_turns=False) as printer:
        summaries, spread = run_all(scenario, seed_list, store_url=store, on_event=printer)
    print_table(console, spread_table(spread))
    console.print(f"runs: {', '.join(s.run_id for s in summaries)}")
    if any(s.status != "finished" for s in summaries):
        raise typer.Exit(EXIT_FAILED)
