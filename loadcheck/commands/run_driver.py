"""The orchestration behind ``loadcheck run`` (kept apart from the click command's options).

See :mod:`loadcheck.commands.run` for the steps and exit statuses.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from pathlib import Path
from typing import Any

import click

from checks.runner import run_checks, write_results
from loadcheck.commands import live
from loadcheck.commands.run_steps import (
    GRACE_S,
    RUN_TIME_SLACK_S,
    aws_target,
    disk_reserve_bytes,
    disk_short,
    evaluate_thresholds,
    free_port,
    kill_group,
    ledger_summary,
    local_target,
    locust_commands,
    print_summary,
    start,
    versions,
    wait_all,
)
from loadcheck.core.chaos import ChaosAction, Outage, covering, read_outages
from loadcheck.core.description import load_description
from loadcheck.core.errors import ExitCode, LoadcheckError
from loadcheck.core.faults import active_faults
from loadcheck.core.ledger import failed, forced_collision, read_ledger
from loadcheck.core.runconfig import LoadConfig, RunOptions
from loadcheck.core.rundir import (
    RunConditions,
    RunRecord,
    Verdict,
    epoch_s,
    iso_utc,
    ledger_state,
    table_lost,
    verdict,
    write_run,
)
from loadcheck.core.runids import claim_run_dir, mark_latest, new_run_id
from loadcheck.core.state import read_stack_json, write_json_atomic
from loadcheck.core.target import Target
from loadcheck.core.thresholds import Abort, AbortWatcher, parse_all
from reference_stack.local import supervisor
from reports import render_all
from reports.compare import compare_runs, render_comparison

STARTUP_S = 60.0  # Locust start-up (imports, workers connecting) before the run time counts


class Driver:
    def __init__(
        self,
        *,
        options: RunOptions,
        out: Path,
        state_dir: Path,
        role: str,
        master_host: str,
        master_port: int,
        worker_count: int | None,
        baseline: str | None,
        tf_outputs: str | None,
        tf_dir: str | None,
        profile: str | None,
        checks: bool,
        ca_bundle: str | None = None,
        chaos: tuple[ChaosAction, ...] = (),
        check_budget_s: float | None = None,
        resolve: str | None = None,
        run_id: str | None = None,
        tty: bool,
    ) -> None:
        self.opts = options
        self.out = out
        self.state_dir = state_dir
        self.role = role
        self.master_host = master_host
        self.master_port = master_port
        self.worker_count = worker_count
        self.baseline = baseline
        self.tf_outputs = tf_outputs
        self.tf_dir = tf_dir
        self.profile = profile
        self.ca_bundle = ca_bundle
        self.resolve = resolve
        self.checks = checks
        self.check_budget_s = check_budget_s  # None: the runner's default for the target
        self.tty = tty
        self.view: live.LiveView | None = None  # while the load runs
        self.chaos = chaos  # --chaos actions, fired on the load's clock (progress.json elapsed_s)
        self.chaos_pending = list(chaos)
        self.disk_full: str | None = None  # why the load was stopped for lack of disk space
        self.run_id = run_id  # --run-id (checked by the command), else a new one
        self.run_dir: Path | None = None  # runs/<run-id>, once made
        self.summary: dict[str, Any] | None = None  # the --json document, once the run has ended
        # --abort-on-fail: judges the thresholds on each progress.json; ``aborted`` once one is doomed
        self.watcher = (
            AbortWatcher(parse_all(options.thresholds), options, chaos=bool(chaos)) if options.abort_on_fail else None
        )
        self.aborted: Abort | None = None
        self._watcher_said: int | None = None  # how many of the watcher's notes were printed

    def say(self, message: str) -> None:
        if self.view is not None and self.view.active:
            self.view.say(message)  # above the live table
        else:
            click.echo(message)

    # ----------------------------------------------------------------------------------------
    def target(self) -> tuple[Any, bool]:
        if self.opts.target == "aws":
            return aws_target(self.tf_outputs, self.tf_dir, self.profile, self.ca_bundle, self.resolve), False
        if self.role == "worker":
            return Target.from_stack_json(read_stack_json(self.state_dir), self.state_dir), False
        return local_target(self.state_dir, dict(self.opts.faults), self.say, self.opts.description)

    def run(self) -> int:
        target, started = self.target()
        try:
            if self.role == "worker":
                return self.run_workers(target)
            return self.run_load(target)
        finally:
            if target.kind == "local" and self.role != "worker":
                if self.opts.faults and not started:
                    with contextlib.suppress(LoadcheckError):
                        supervisor.clear_faults(self.state_dir)
                        self.say("faults cleared")
                if started:
                    self.say("local stack: stopping (started for this run)")
                    supervisor.stop_stack(self.state_dir)

    # ----------------------------------------------------------------------------------------
    def run_workers(self, target: Any) -> int:
        """Multi-machine worker side: N workers for a master elsewhere; the master writes the run."""
        run_dir = self.out / f"worker-{new_run_id()}"
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg_path = run_dir / "loadconfig.json"
        cfg_path.write_text(
            LoadConfig(
                run_id="from-master", run_dir=str(run_dir), options=self.opts, target=target.to_public()
            ).to_json()
        )
        cmds = locust_commands(
            self.opts,
            cfg_path=cfg_path,
            run_dir=run_dir,
            url=target.url,
            master_port=self.master_port,
            role="worker",
            master_host=self.master_host,
            worker_count=self.worker_count,
        )
        procs = [start(argv, run_dir / f"worker-{i}.log") for i, argv in enumerate(cmds["workers"])]
        self.say(f"{len(procs)} worker(s) connecting to {self.master_host}:{self.master_port}; logs in {run_dir}")
        interrupted = False
        try:
            while any(p.poll() is None for p in procs):
                time.sleep(0.5)
        except KeyboardInterrupt:
            interrupted = True
            for p in procs:
                kill_group(p, signal.SIGTERM)
            wait_all(procs, time.monotonic() + 30)
        for p in procs:
            if p.poll() is None:
                kill_group(p)
        codes = [p.wait() for p in procs]
        self.say(f"workers exited: {codes}")
        if interrupted:
            return ExitCode.INTERRUPTED
        # Locust runs with --exit-code-on-error 0: anything but 0 is a worker that failed itself.
        if any(c != 0 for c in codes):
            self.say(f"a worker failed (exit codes {codes}); see {run_dir}/worker-*.log")
            return ExitCode.ERROR
        return ExitCode.PASSED

    def conditions(self, target: Any) -> RunConditions:
        """What this run runs under: every fault active on the target (whoever set it), collisions,
        shape and mix."""
        faults = dict(self.opts.faults)
        if target.kind == "local":
            faults = {**active_faults(self.state_dir), **faults}
        return RunConditions(
            faults=faults,
            collisions=self.opts.collisions,
            shape=self.opts.shape,
            mix=dict(self.opts.mix),
            chaos=[str(c) for c in self.chaos],
        )

    def run_load(self, target: Any) -> int:
        opts = self.opts
        run_id = self.run_id or new_run_id()
        run_dir = self.run_dir = claim_run_dir(self.out, run_id)
        run = RunRecord(
            run_id=run_id,
            status="running",
            target=target.to_public(),
            options=opts.to_dict(),
            conditions=self.conditions(target),
            versions=versions(),
            started_at=iso_utc(time.time()),
            baseline=self.baseline,
        )
        write_run(run_dir, run)
        try:
            mark_latest(run_dir)
        except OSError as exc:  # the run goes on; only the pointer to it is missing
            self.say(f"{run_dir.parent / 'latest'} not updated: {exc}")
        if run.conditions.faults:
            self.say("faults active: " + ", ".join(f"{k}={v}" for k, v in sorted(run.conditions.faults.items())))
        cfg_path = run_dir / "loadconfig.json"
        cfg_path.write_text(
            LoadConfig(run_id=run_id, run_dir=str(run_dir), options=opts, target=target.to_public()).to_json()
        )
        port = self.master_port if self.role == "master" else free_port()
        cmds = locust_commands(
            opts, cfg_path=cfg_path, run_dir=run_dir, url=target.url, master_port=port, role=self.role
        )
        if target.kind == "local" and self.role != "worker":
            self.prewarm_lambda(target)
        self.say(f"run {run_id}: {describe(opts)} against {target.url} ({target.kind})")
        self.say(f"run directory: {run_dir}")

        self.view = live.LiveView(run_dir=run_dir, tty=self.tty, burst=self.burst_reader(target))
        interrupted, note, procs = self.drive(cmds, run_dir)
        loadgen = read_json(run_dir / "loadgen.json")
        run.status = "interrupted" if interrupted or self.disk_full or not loadgen else "complete"
        if self.aborted is not None and run.status == "complete":
            run.status, run.aborted = "aborted", self.aborted.to_run(iso_utc(self.aborted.t or None))
        run.ended_at = iso_utc(loadgen.get("ended_at")) or iso_utc(time.time())
        run.started_at = iso_utc(loadgen.get("started_at")) or run.started_at
        run.dropped_arrivals = int(loadgen.get("dropped_arrivals", 0))
        run.ledger_records = loadgen.get("ledger_records")
        run.locust = loadgen.get("locust", {})
        run.workers = loadgen.get("workers", {})
        run.processes = procs
        run.note = note
        run.outages = self.run_outages(run_dir, run, target)
        write_run(run_dir, run)

        summary = ledger_summary(run_dir, outages=[Outage.from_dict(o) for o in run.outages])
        run.thresholds = evaluate_thresholds(opts, run_dir, summary)
        write_run(run_dir, run)
        lost = table_lost(run.outages)
        results: list[Any] | None
        checks_note: str | None
        if lost:
            results, checks_note = None, f"checks not run: {lost}"
        else:
            results, checks_note = (
                self.run_checks(run_dir, target) if self.checks else (None, "checks skipped (--no-checks)")
            )
        if results is not None:
            self.write_results(run_dir, target, results, [])
        baseline_broken, baseline_note = self.compare_baseline(run_dir)
        if results is not None and baseline_broken:
            self.write_results(run_dir, target, results, baseline_broken)
        final = verdict(
            results if self.checks else None,
            thresholds=run.thresholds,
            run_status=run.status,
            ledger_problems=ledger_state(run_dir, run.to_dict()).problems,
            baseline_broken=baseline_broken,
            unchecked=[checks_note or "checks could not run"] if self.checks and results is None else [],
            outages=run.outages,
            aborted=run.aborted,
        )
        reports_note = self.render_reports(run_dir)
        notes = "; ".join(n for n in (note, checks_note, reports_note, baseline_note) if n)
        print_summary(run_dir, run.to_dict(), summary, run.thresholds, results, notes or None)
        for line in self.view.summary_lines():
            click.echo(line)
        for reason in final.reasons:
            click.echo(f"  - {reason}")
        unverified = "" if self.checks else " (load only: no checks ran)"
        click.echo(f"verdict: {final.value.upper()}{unverified}  ({run_dir})")
        self.summary = run_summary(run_dir, run, final, results if self.checks else None, int(final.code))
        return int(final.code)

    # ----------------------------------------------------------------------------------------
    def prewarm_lambda(self, target: Any) -> None:
        """Initialise a few execution environments per function before the clock starts.

        The expected concurrency is the peak arrival rate times ~250 ms (any function may get it all),
        at least 2. Without this, a local run begins with that many simultaneous cold starts on
        a 2-core host, which briefly exceed reserved concurrency and turn into 500s that AWS
        (one microVM per environment) would not produce. See docs/fidelity.md (lambda).
        """
        opts = self.opts
        peak = max([opts.rate or 0.0, *opts.steps, float(opts.users or 0)])
        # Which kinds reach which function is the workload's business, unknown here: every
        # function that serves a route is prepared for the whole peak.
        served = set(load_description(opts.description, aws=opts.target == "aws").routes.values())
        counts = {name: max(2, math.ceil(peak * 0.25)) for key, name in target.function_names.items() if key in served}
        if not counts:
            return
        ready = supervisor.prewarm(self.state_dir, counts)
        self.say(
            "lambda: " + ", ".join(f"{n} environment(s) of {fn} initialised ahead of load" for fn, n in ready.items())
        )

    def drive(self, cmds: dict[str, Any], run_dir: Path) -> tuple[bool, str | None, list[dict[str, Any]]]:
        """Run Locust to the end (or Ctrl-C); (interrupted, note, processes)."""
        # SIGTERM (a CI job cancelled) is handled like Ctrl-C: stop the load in order, keep the
        # ledger; the Locust processes run in their own sessions and would outlive us otherwise.
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            return self._drive(cmds, run_dir)
        finally:
            signal.signal(signal.SIGTERM, previous)
            if self.view is not None:
                self.view.close()

    def _drive(self, cmds: dict[str, Any], run_dir: Path) -> tuple[bool, str | None, list[dict[str, Any]]]:
        main = start(cmds["main"], run_dir / "locust.log")
        workers = [start(argv, run_dir / f"worker-{i}.log") for i, argv in enumerate(cmds["workers"])]
        all_procs = [main, *workers]
        reserve = disk_reserve_bytes()
        hard_deadline = time.monotonic() + STARTUP_S + self.opts.total_duration_s + RUN_TIME_SLACK_S + GRACE_S
        interrupted, note = False, None
        try:
            while main.poll() is None:
                if time.monotonic() > hard_deadline:
                    note = "Locust did not finish in time; stopped"
                    main.send_signal(signal.SIGTERM)
                    wait_all([main], time.monotonic() + GRACE_S)
                    break
                self.show_progress(run_dir)
                if self.abort_step(run_dir):
                    main.send_signal(signal.SIGTERM)
                    wait_all([main], time.monotonic() + GRACE_S)
                    break
                self.disk_full = disk_short(run_dir, reserve)
                if self.disk_full:
                    note = self.disk_full
                    self.say(note)
                    main.send_signal(signal.SIGTERM)
                    wait_all([main], time.monotonic() + GRACE_S)
                    break
                if self.chaos_step(run_dir):
                    note = "the aws endpoint died: the load was stopped (the table died with it)"
                    main.send_signal(signal.SIGTERM)
                    wait_all([main], time.monotonic() + GRACE_S)
                    break
                time.sleep(0.5)
        except KeyboardInterrupt:
            interrupted = True
            self.say("interrupted: stopping the load, collecting the ledger (Ctrl-C again to stop waiting)")
            with contextlib.suppress(ProcessLookupError):
                main.send_signal(signal.SIGTERM)
            try:
                wait_all([main], time.monotonic() + GRACE_S)
            except KeyboardInterrupt:
                note = "second Ctrl-C: stopped waiting for the final ledger batches"
        wait_all(workers, time.monotonic() + 15)
        for p in all_procs:
            if p.poll() is None:
                kill_group(p, signal.SIGTERM)
        wait_all(all_procs, time.monotonic() + 10)
        for p in all_procs:
            if p.poll() is None:
                kill_group(p)
            p.wait()
        self.show_progress(run_dir, final=True)
        procs = [
            {"role": "main" if p is main else "worker", "pid": p.pid, "exit_code": p.returncode} for p in all_procs
        ]
        crashed = [p for p in procs if p["exit_code"] != 0]
        if crashed and not note:
            note = f"{len(crashed)} Locust process(es) ended abnormally (exit codes {[p['exit_code'] for p in crashed]}); see {run_dir}/*.log"
        return interrupted, note, procs

    def abort_step(self, run_dir: Path) -> bool:
        """``--abort-on-fail``: True once a threshold can no longer pass (the load must stop)."""
        if self.watcher is None:
            return False
        if self._watcher_said is None:
            self._watcher_said = 0
            for name, why in self.watcher.skipped.items():
                self.say(f"abort-on-fail: {name} is judged after the load only: {why}")
        abort = self.watcher.check(read_json(run_dir / "progress.json"))
        for line in self.watcher.notes[self._watcher_said :]:
            self.say(line)
        self._watcher_said = len(self.watcher.notes)
        if abort is None:
            return False
        self.aborted = abort
        self.say(
            f"abort-on-fail: threshold {abort.threshold} can no longer pass {abort.elapsed_s:.1f} s into the load "
            f"({abort.reason}): stopping the load, collecting the ledger"
        )
        return True

    def chaos_step(self, run_dir: Path) -> bool:
        """Fire the ``--chaos`` actions that are due on the load's clock; True once the aws
        endpoint has died (the load is pointless: the table it writes to is gone)."""
        if not self.chaos:
            return False
        elapsed = float(read_json(run_dir / "progress.json").get("elapsed_s") or 0.0)
        for action in [a for a in self.chaos_pending if a.at_s <= elapsed and elapsed > 0]:
            self.chaos_pending.remove(action)
            try:
                done = supervisor.kill(self.state_dir, action.target)
            except LoadcheckError as exc:
                self.say(f"chaos {action}: not done: {exc.message}")
                continue
            self.say(f"chaos {action}: SIGKILL pid {done['pid']} at {elapsed:.1f}s into the load")
        return any(o.fatal and o.service == "aws" for o in read_outages(self.state_dir))

    def run_outages(self, run_dir: Path, run: RunRecord, target: Any) -> list[dict[str, Any]]:
        """The stack's outages during this run, each with the number of requests it covered."""
        if target.kind != "local" or self.role == "worker":
            return []
        start, end = epoch_s(run.started_at) or 0.0, epoch_s(run.ended_at) or time.time()
        # Every outage that overlapped the load (a service down when it started counts too).
        outages = [
            o for o in read_outages(self.state_dir) if o.down_at <= end and (o.up_at is None or o.up_at >= start)
        ]
        if not outages:
            return []
        inside = dict.fromkeys(range(len(outages)), 0)
        failures = dict.fromkeys(range(len(outages)), 0)
        with contextlib.suppress(LoadcheckError):
            for rec in read_ledger(run_dir):
                hit = covering(rec, outages)
                if hit is not None:
                    inside[outages.index(hit)] += 1
                    failures[outages.index(hit)] += int(failed(rec) and not forced_collision(rec))
        for n, o in enumerate(outages):
            o.requests, o.failed = inside[n], failures[n]
            restart = f"restarted in {o.restart_s:.2f} s" if o.restart_s is not None else "not restarted"
            self.say(
                f"outage: {o.service} (pid {o.pid}) {restart}; {o.requests} request(s) in its window, {o.failed} failed"
            )
        return [o.to_run() for o in outages]

    def show_progress(self, run_dir: Path, *, final: bool = False) -> None:
        if self.view is not None:
            self.view.update(read_json(run_dir / "progress.json"), final=final)

    def burst_reader(self, target: Any) -> Any:
        """The local table's burst buckets for the live view (the aws service's admin path)."""
        if target.kind != "local":
            return None
        return lambda: live.Burst.from_snapshot(supervisor.capacity(self.state_dir), target.table_name)

    # ----------------------------------------------------------------------------------------
    def run_checks(self, run_dir: Path, target: Any) -> tuple[list[Any] | None, str | None]:
        self.checks_started = iso_utc(time.time())
        self.say("checks: running")
        try:
            results = run_checks(
                run_dir,
                state_dir=self.state_dir if target.kind == "local" else None,
                budget_s=self.check_budget_s,
                progress=self.say,
                local_flush=supervisor.flush,
            )
        except LoadcheckError as exc:
            return None, f"checks could not run: {exc}"
        return results, None

    def write_results(self, run_dir: Path, target: Any, results: list[Any], baseline_broken: list[str]) -> None:
        write_results(
            run_dir,
            results,
            started_at=self.checks_started,
            ended_at=iso_utc(time.time()),
            options=self.opts.to_dict(),
            target=target.to_public(),
            baseline_broken=baseline_broken,
        )

    def compare_baseline(self, run_dir: Path) -> tuple[list[str], str | None]:
        """With ``--baseline``: judge this run against it (default budgets of `loadcheck compare`);
        (broken budgets, note)."""
        if not self.baseline:
            return [], None
        try:
            cmp = compare_runs(self.baseline, run_dir)
        except LoadcheckError as exc:
            return [f"comparison failed: {exc.message}"], f"baseline comparison failed: {exc}"
        write_json_atomic(run_dir / "comparison.json", cmp.to_dict())
        click.echo(render_comparison(cmp, "table"))
        return list(cmp.broken), None if cmp.ok else f"baseline budgets broken: {'; '.join(cmp.broken)}"

    def render_reports(self, run_dir: Path) -> str | None:
        try:
            paths = render_all(run_dir)
        except LoadcheckError as exc:
            return f"reports failed: {exc}"
        self.say("reports: " + ", ".join(str(p) for p in paths))
        return None


SUMMARY_SCHEMA_VERSION = 1  # docs/run-summary.schema.json
REPORT_FILES = ("report.html", "summary.md", "junit.xml")


def run_summary(
    run_dir: Path, run: RunRecord, final: Verdict, results: list[Any] | None, exit_code: int
) -> dict[str, Any]:
    """The ``loadcheck run --json`` document (docs/run-summary.schema.json): where the run is,
    its verdict and exit code, each check and each threshold."""
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "run_id": run.run_id,
        "run_dir": str(run_dir),
        "status": run.status,
        "target": (run.target or {}).get("kind"),
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "verdict": final.value,
        "verdict_reasons": list(final.reasons),
        "exit_code": int(exit_code),
        "checks_ran": results is not None,
        "checks": [{"name": r.name, "status": r.status, "summary": r.summary} for r in results or ()],
        "thresholds": [
            {
                "name": str(t.get("name")),
                "value": t.get("value", t.get("actual")),
                "limit": t.get("limit"),
                "passed": bool(t.get("passed")),
            }
            for t in run.thresholds
        ],
        "reports": {name: str(run_dir / name) for name in REPORT_FILES if (run_dir / name).is_file()},
    }


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def describe(opts: RunOptions) -> str:
    if opts.shape == "constant-rate":
        load = f"constant-rate {opts.rate:g} req/s for {opts.duration_s:g}s"
    elif opts.shape == "step":
        load = f"step {','.join(f'{s:g}' for s in opts.steps)} req/s, {opts.step_duration_s:g}s each"
    else:
        load = f"ramp to {opts.users} users at {opts.spawn_rate:g}/s for {opts.duration_s:g}s"
    mix = ",".join(f"{k}={v}" for k, v in opts.mix.items()) or "of the workload"
    workers = f", {opts.workers} workers" if opts.workers else ""
    return f"{load}, mix {mix}{workers}"


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
