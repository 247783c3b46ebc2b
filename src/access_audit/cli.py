"""The ``access-audit`` command."""


import csv
import sys
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from access_audit.api.cli import serve, tokens_app
from access_audit.breach.cli import breach_app
from access_audit.core.errors import AccessAuditError, QueryError, RuleLoadErrors
from access_audit.runtime import settle_heap

if TYPE_CHECKING:
    from access_audit.settings import Settings


def _quiet_flag_types() -> None:
    """Typer shows a type beside every option; a flag's ``<bool>`` says nothing the flag does not."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_quiet_flag_types()

app = typer.Typer(help="Audit who accesses what, detect unusual access, and run the GDPR breach workflow.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
detectors_app = typer.Typer(help="Detection rules: test, lint, list, eval.", no_args_is_help=True)
app.add_typer(detectors_app, name="detectors")
app.add_typer(breach_app, name="breach")
app.add_typer(tokens_app, name="tokens")
alerts_app = typer.Typer(help="Alerts in the store: list, show, ack, resolve.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
dead_app = typer.Typer(help="Dead letters (records that could not be stored as events): list, show, replay.",
                       no_args_is_help=True)
app.add_typer(dead_app, name="dead-letters")
kibana_app = typer.Typer(help="Kibana: load the data views, saved searches and the \"Access audit\" dashboard.",
                         no_args_is_help=True)
app.add_typer(kibana_app, name="kibana")
app.command("serve")(serve)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory (env ACCESS_AUDIT_DATA_DIR; "
                                              "default ./.access-audit).", show_default=False)]
Rules = Annotated[list[Path] | None, typer.Option("--rules", help="Extra rule file or folder (repeatable).")]
Fmt = Annotated[str, typer.Option("--format", "-f", help="table | json (one JSON object per line) | csv")]
Year = Annotated[int | None, typer.Option(min=1970, max=2100, help="Year of the first syslog line (they carry "
                                          "none; default: inferred from today).")]
SourceName = Annotated[str, typer.Option("--source-name", help="Name of the stream these lines come from (part of "
                                         "the event ids; give each host's copy of a host-less log its own).")]


def _print_version(value: bool) -> None:
    if value:
        from access_audit import __version__

        out.print(f"access-audit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                               callback=_print_version)] = False,
) -> None:
    """Audit who accesses what, detect unusual access, and run the GDPR breach workflow.

    Add --debug to any command to see the traceback of an unexpected error."""


def _settings(data_dir: Path | None) -> "Settings":
    from access_audit.settings import Settings  # pydantic-settings: 160 ms, not for --help

    return Settings(data_dir=data_dir) if data_dir else Settings()


def _fail(msg: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(msg)}")
    return typer.Exit(code)


# --- run ----------------------------------------------------------------------------------------

@app.command()
def run(
    input: Annotated[list[Path] | None, typer.Option("--input", "-i", help="File or folder to read ('-' for "
                                                     "stdin; repeatable). Default: stdin.")] = None,
    log_type: Annotated[str | None, typer.Option("--log-type", "-t", help="Parser to use; default: detect "
                                                 "per record.")] = None,
    year: Year = None,
    rules: Rules = None,
    data_dir: DataDir = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print alerts, only the summary.")] = False,
    source_name: SourceName = "",
) -> None:
    """Read access logs, store the events, and raise alerts (embedded mode: no servers needed)."""
    from access_audit.app import alert_sinks, build_embedded
    from access_audit.ingest.files import LineReader
    from access_audit.ingest.memory import InMemoryBus
    from access_audit.parse.base import known_log_types, parser_names

    settings = _settings(data_dir)
    if log_type and log_type not in known_log_types():
        raise _fail(f"unknown log type {log_type!r}; known: {', '.join(parser_names())}")
    try:
        reader = LineReader(input or [Path("-")], log_type=log_type, year=year, source_name=source_name)
    except FileNotFoundError as e:
        raise _fail(str(e)) from None
    sinks = alert_sinks(settings, None if quiet else err)  # Slack with a token, else the console; JSONL
    try:
        emb = build_embedded(settings, sinks=sinks, rules=rules)
    except RuleLoadErrors as e:
        raise _fail(str(e)) from None
    settle_heap()
    bus = InMemoryBus()
    source = bus.source("raw-logs")
    dead_by_source = _DeadLetterCounter()
    emb.pipeline.dead_letter_sinks.append(dead_by_source)
    dead_before = _dead_letter_total(emb.store)
    records = iter(reader)
    with _progress("run", quiet=False) as progress:
        task = progress.add_task("records", total=None)
        while chunk := list(islice(records, settings.batch_size)):
            for rec in chunk:
                bus.produce_record("raw-logs", rec)
            emb.pipeline.run(source, batch_size=settings.batch_size)
            progress.advance(task, len(chunk))
    for sink in sinks:
        sink.close()
    st = emb.pipeline.stats
    dead_new = max(0, _dead_letter_total(emb.store) - dead_before)
    all_dead = [src for src, n in reader.records_by_source.items() if n and dead_by_source.by_source[src] >= n]
    summary = {"records": st.records, "events": st.events, "events_new": st.events_new,
               "dead_letters": st.dead_letters, "dead_letters_new": dead_new, "blank_lines": reader.blank_lines,
               "alerts_new": st.alerts_new, "alert_updates": st.alert_updates,
               "by_log_type": dict(st.by_log_type), "dead_letter_reasons": dict(st.dead_by_reason),
               "files": len(reader.records_by_source), "skipped_files": [str(p) for p, _ in reader.skipped],
               "file_errors": [e.__dict__ for e in reader.file_errors], "all_dead_letters": all_dead,
               "late_events": dict(emb.pipeline.engine.stats.late), "data_dir": str(settings.data_dir)}
    emb.store.close()
    err.print(f"[bold]{st.records}[/] records: [green]{st.events}[/] events ({st.events_new} new), "
              f"[yellow]{st.dead_letters}[/] dead letters ({dead_new} new), [red]{st.alerts_new}[/] new alerts "
              f"({st.alert_updates} updates) -> {escape(str(settings.data_dir))}")
    if st.dead_letters:
        for reason, n in st.dead_by_reason.most_common(5):
            err.print(f"  dead letters: {n} x {escape(reason)}")
    for lt, n in sorted(emb.pipeline.engine.stats.late.items()):
        err.print(f"  late: {n} {escape(lt)} events came more than the allowed lateness "
                  f"({settings.lateness_for([lt])}) after newer ones: stored and evaluated, but the stateful "
                  "rules may alert differently than in time order (read files oldest first)")
    for p, why in reader.skipped:
        err.print(f"  [yellow]skipped[/] {escape(str(p))}: {escape(why)}")
    for fe in reader.file_errors:
        err.print(f"  [red]not read to the end[/] {escape(fe.path)}: {escape(fe.reason)} "
                  f"({fe.lines_read} line(s) before it were read)")
    for src in all_dead:
        err.print(f"  [red]every record of {escape(src)} became a dead letter[/]"
                  + (" (a CSV export no parser supports: the rows are kept as dead letters)"
                     if src.lower().endswith((".csv", ".csv.gz")) else ""))
    if all_dead:
        top = st.dead_by_reason.most_common(1)[0][0] if st.dead_by_reason else ""
        if year and "timestamp" in top:
            hint = f"is --year {year} right? Lines dated more than 2 days ahead are refused"
        elif log_type:
            hint = f"is --log-type {log_type} right? Without --log-type each line is recognised by its content"
        else:
            hint = "see 'access-audit status' and the dead letters' reasons above"
        err.print(f"hint: {escape(hint)}")
    if not sys.stdout.isatty():
        sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    if reader.file_errors or all_dead:
        raise typer.Exit(1)


class _DeadLetterCounter:
    """A dead-letter sink that counts per source, so a run can tell when a whole file failed."""

    def __init__(self) -> None:
        from collections import Counter

        self.by_source: Counter[str] = Counter()

    def emit_dead_letter(self, d: Any) -> None:
        self.by_source[d.source] += 1

    def flush(self) -> None:
        return None


def _dead_letter_total(store: Any) -> int:
    return int(store.stats()["dead_letters"]["total"])


def _progress(what: str, *, quiet: bool) -> Any:
    """A progress bar on stderr when it is a terminal (also with -q); nothing otherwise."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn(f"[bold]{what}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=True, disable=quiet or not err.is_terminal)


# --- production: worker and ship ---------------------------------------------------------------

@app.command()
def worker(
    rules: Rules = None,
    data_dir: DataDir = None,
    max_idle: Annotated[float | None, typer.Option(help="Exit after this many seconds without records "
                                                   "(for tests and backfills); default: run until stopped.")] = None,
    health_port: Annotated[int | None, typer.Option(min=1, max=65535, help="Answer /healthz and /readyz (store "
                                                    "and broker) for container probes, and /metrics (Prometheus), "
                                                    "on this port.")] = None,
    health_host: Annotated[str, typer.Option(help="Address of the health endpoint.")] = "0.0.0.0",
) -> None:
    """Consume raw logs from Kafka, store events in the configured store, produce alerts to Kafka.

    Configure with ACCESS_AUDIT_KAFKA_BOOTSTRAP_SERVERS, ACCESS_AUDIT_KAFKA_TOPICS, ACCESS_AUDIT_STORE
    (sqlite | elasticsearch), ACCESS_AUDIT_ELASTICSEARCH_URL and friends. Stops cleanly on SIGTERM.
    """
    import logging
    import signal
    import threading
    import time

    from access_audit.app import build_worker
    from access_audit.notify.console import ConsoleNotifier

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(data_dir)
    stop = threading.Event()
    running = [False]

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()
        if not running[0]:  # still connecting (a broker or store that is down): nothing to finish
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    health = None
    if health_port:
        from access_audit.health import serve_health

        ready: dict[str, Any] = {}  # filled once the worker is built: until then /readyz says 503
        health = serve_health(health_host, health_port, {
            "store": lambda: ready["store"](), "broker": lambda: ready["broker"]()},
            metrics=lambda: ready["metrics"]() if "metrics" in ready else "# the worker is starting\n")
    w = build_worker(settings, sinks=[ConsoleNotifier(err)], rules=rules)
    settle_heap()
    if health is not None:
        from access_audit.store.query import Query

        ready["store"] = lambda: w.store.count(Query(limit=1)) is not None
        consumer = getattr(w.source, "consumer", None)
        ready["broker"] = lambda: consumer is None or consumer.bootstrap_connected()
        ready["metrics"] = w.metrics_text
    running[0] = True
    last = [time.monotonic()]

    def on_batch(res: Any) -> None:
        last[0] = time.monotonic()
        st = w.pipeline.stats
        err.print(f"batch: {res.events} events ({res.events_new} new), {res.dead_letters} dead letters; "
                  f"total {st.events} events, {st.alerts_new} alerts")

    if max_idle is not None:
        def watchdog() -> None:
            while not stop.wait(0.5):
                if w.busy:
                    last[0] = time.monotonic()
                elif time.monotonic() - max(last[0], w.last_activity) > max_idle:
                    stop.set()
        threading.Thread(target=watchdog, daemon=True).start()
    try:
        w.run(batch_size=settings.batch_size, stop=stop, on_batch=on_batch)
    finally:
        w.close()
        if health is not None:
            health.shutdown()
    st = w.pipeline.stats
    sys.stdout.write(orjson.dumps({"records": st.records, "events": st.events, "events_new": st.events_new,
                                   "dead_letters": st.dead_letters, "alerts_new": st.alerts_new,
                                   "retries": st.store_retries}).decode() + "\n")


@app.command()
def topics(
    create: Annotated[bool, typer.Option("--create", help="Create the topics that do not exist (raw, alerts, "
                                         "dead letters and the hand-over topics of the loaded rules).")] = False,
    rules: Rules = None,
    fmt: Fmt = "table",
    data_dir: DataDir = None,
) -> None:
    """The Kafka topology the loaded rules make: the raw topics of stage 1 and, per rule grouping,
    the hand-over topic of stage 2 with its rules (docs/design/topology.md)."""
    from access_audit.app import kafka_adapters, load_ruleset
    from access_audit.core.errors import BusError
    from access_audit.handover import Topology

    _check_format(fmt)
    settings = _settings(data_dir)
    topology = Topology.of(load_ruleset([*settings.rules, *(rules or [])]).rules, settings.kafka_group_id)
    parts: dict[str, int] = {}
    if create:
        kafka = kafka_adapters(settings)
        base = [*settings.kafka_topics, settings.kafka_alerts_topic, settings.kafka_dead_letter_topic]
        try:
            kafka.ensure_topics(settings, base, settings.kafka_raw_partitions, settings.kafka_handover_replication,
                                connect_timeout_s=60.0)
            parts = kafka.ensure_topics(settings, list(topology.topics), settings.kafka_handover_partitions,
                                        settings.kafka_handover_replication, connect_timeout_s=60.0)
        except BusError as e:
            raise _fail(str(e)) from None
    rows = [{"stage": "2", "topic": d["topic"], "key": "+".join(d["key"] or []) or "(none: one partition)",
             "partitions": d["partitions"] or "", "rules": ", ".join(d["rules"]), "stateful": d["stateful"]}
            for d in topology.describe(parts)]
    rows = [{"stage": "1", "topic": t, "key": "(as shipped)", "partitions": "", "rules": "parse, store, hand over",
             "stateful": 0} for t in settings.kafka_topics] + rows
    if fmt != "table":
        _write_rows(rows, ("stage", "topic", "key", "partitions", "rules", "stateful"), fmt, "")
        return
    t = Table(title=f"Kafka topology of group {settings.kafka_group_id} ({settings.kafka_topology})")
    for col in ("stage", "topic", "key", "partitions", "stateful", "rules"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["stage"], r["topic"], r["key"], str(r["partitions"]), str(r["stateful"]), r["rules"])
    out.print(t)


@app.command()
def ship(
    files: Annotated[list[Path], typer.Argument(help="Files or folders to send ('-' for stdin).")],
    topic: Annotated[str | None, typer.Option(help="Topic (default: the first of ACCESS_AUDIT_KAFKA_TOPICS).")] = None,
    log_type: Annotated[str | None, typer.Option("--log-type", "-t")] = None,
    year: Year = None,
    key_field: Annotated[str | None, typer.Option(help="Event field that keys each message "
                                                  "(default ACCESS_AUDIT_KAFKA_PARTITION_KEY).")] = None,
    source_name: SourceName = "",
    timeout: Annotated[float, typer.Option(min=0, help="Give up when Kafka does not answer for this many "
                                           "seconds.")] = 60.0,
) -> None:
    """Send log files into Kafka (backfills, tests), one message per line (per event for auditd), keyed for
    stateful rules."""
    from access_audit.core.events import get_field
    from access_audit.ingest.files import LineReader
    from access_audit.ingest.kafka import ship as ship_records  # retries with a countdown (kafka-python)
    from access_audit.parse.base import ParserRegistry, known_log_types
    from access_audit.settings import Settings

    settings = Settings()
    if log_type and log_type not in known_log_types():
        raise _fail(f"unknown log type {log_type!r}")
    try:
        reader = LineReader(files, log_type=log_type, year=year, source_name=source_name)
    except FileNotFoundError as e:
        raise _fail(str(e)) from None
    path = tuple((key_field or settings.kafka_partition_key).split("."))
    registry = ParserRegistry()

    def key_of(rec: Any) -> bytes | None:
        res = registry.parse(rec)
        v = get_field(res.events[0], path) if res.events else None
        return str(v).encode() if v is not None else None

    def countdown(pause: float, attempt: int, reason: str, left: float | None) -> None:
        import time

        where = escape(settings.kafka_bootstrap_servers)
        if not err.is_terminal:
            err.print(f"Kafka at {where} does not answer ({escape(reason)}): attempt {attempt} failed, "
                      f"retrying in {pause:.0f}s" + (f", giving up in {left:.0f}s" if left is not None else ""))
            time.sleep(pause)
            return
        end = time.monotonic() + pause
        with err.status("") as status:
            while (rest := end - time.monotonic()) > 0:
                status.update(f"Kafka at {where} does not answer: retry {attempt + 1} in {rest:.0f}s"
                              + (f" (giving up in {max(0.0, (left or 0) - pause + rest):.0f}s)"
                                 if left is not None else ""))
                time.sleep(min(1.0, rest))

    n = ship_records(settings, reader, topic or settings.kafka_topics[0], key_of, connect_timeout_s=timeout,
                     wait=countdown)
    err.print(f"shipped {n} records to {escape(topic or settings.kafka_topics[0])}")
    for p, why in reader.skipped:
        err.print(f"  [yellow]skipped[/] {escape(str(p))}: {escape(why)}")
    for fe in reader.file_errors:
        err.print(f"  [red]not read to the end[/] {escape(fe.path)}: {escape(fe.reason)} "
                  f"({fe.lines_read} line(s) before it were shipped)")
    sys.stdout.write(orjson.dumps({"shipped": n, "skipped_files": [str(p) for p, _ in reader.skipped],
                                   "file_errors": [e.__dict__ for e in reader.file_errors]}).decode() + "\n")
    if reader.file_errors:
        raise typer.Exit(1)


@app.command()
def scheduler(
    data_dir: DataDir = None,
    max_seconds: Annotated[float | None, typer.Option(help="Stop after this long (tests); default: until stopped.")]
    = None,
) -> None:
    """Breach reminders (APScheduler, rebuilt from the stored cases) and Slack outbox delivery.

    Reminders go to the console and, with a Slack token, to ACCESS_AUDIT_SLACK_DPO_CHANNEL; each
    fires once, also across restarts. Stops cleanly on SIGTERM.
    """
    import signal
    import threading

    from access_audit.breach.reminders import ConsoleSender, slack_sender
    from access_audit.breach.service import reminder_scheduler, workflow_from_settings

    settings = _settings(data_dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    senders: dict[str, Any] = {"console": ConsoleSender(err)}
    slack = None
    if settings.slack_token is not None or settings.slack_token_file is not None:
        from access_audit.notify.slack import SlackNotifier

        slack = SlackNotifier.from_settings(settings)
        slack.start()  # also delivers what the workers left in the outbox
        senders["slack"] = slack_sender(slack, settings.slack_dpo_channel)
    wf = workflow_from_settings(settings)
    sched = reminder_scheduler(wf, senders)
    sched.start()
    err.print(f"scheduler: {len(sched.job_ids())} reminder(s) planned" + (", Slack delivery on" if slack else "")
              + f", log sources checked every {settings.source_check_minutes:g} min")
    checker = threading.Thread(target=_check_sources_until, args=(settings, stop, slack), name="sources",
                               daemon=True)
    checker.start()
    try:
        stop.wait(max_seconds)
    finally:
        stop.set()
        checker.join(timeout=30)
        sched.shutdown()
        if slack is not None:
            slack.close()
        wf.repo.close()


def _check_sources_until(settings: Any, stop: Any, slack: Any) -> None:
    """The scheduler's source check: every ``source_check_minutes``, silent or dropped log sources
    raise ``log_source_silent`` alerts (Slack when configured, else the console; alerts.jsonl)."""
    import logging
    from datetime import UTC, datetime

    from access_audit import sources as src
    from access_audit.notify.console import ConsoleNotifier, JsonlAlertSink
    from access_audit.store.opening import open_store

    sinks: list[Any] = [slack if slack is not None else ConsoleNotifier(err), JsonlAlertSink(settings.alerts_path)]
    while not stop.is_set():
        try:
            now = datetime.now(UTC)
            store = open_store(settings)
            try:
                src.raise_alerts(store, sinks, src.check(store, settings, now)[1])
            finally:
                store.close()
        except Exception as e:  # a store that is down now is checked again next time
            logging.getLogger(__name__).warning("log source check failed: %s: %s", type(e).__name__, e)
        stop.wait(settings.source_check_minutes * 60)


@app.command()
def retention(
    days: Annotated[int | None, typer.Option(min=1, help="Keep events and dead letters this many days (default "
                                             "ACCESS_AUDIT_RETENTION_DAYS). Alerts, self-audit records and "
                                             "closed cases keep their own periods.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; delete nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text | json (the whole plan on stdout)")] = "text",
    data_dir: DataDir = None,
) -> None:
    """Delete data older than its retention period, by whole UTC days (GDPR Art. 5(1)(e)).

    Shows the plan first (class, days, records, action: delete / kept: held by BR-... / kept: own
    retention) and asks before deleting, unless --yes. Legal holds win: a breach case keeps the days
    of its evidence until it is closed plus ACCESS_AUDIT_LEGAL_HOLD_DAYS (GDPR Art. 33(5)).
    Elasticsearch: a day of events is its daily index, kept or deleted whole.
    """
    from datetime import UTC, datetime

    from access_audit import retention as ret
    from access_audit.breach.repo import BreachRepo
    from access_audit.store.opening import open_store

    if fmt not in ("text", "json"):
        raise typer.BadParameter("--format must be text or json")
    settings = _settings(data_dir)
    now = datetime.now(UTC)
    store = open_store(settings)
    repo = BreachRepo.from_settings(settings) if settings.breach_path.exists() else None
    try:
        holds = {h["id"]: ret.LegalHold.from_doc(h) for h in store.legal_holds()}
        for case in repo.list() if repo else []:  # the cases are the source of truth of their holds
            h = ret.hold_for_case(case, settings.legal_hold_days)
            if holds.get(h.id) != h:
                store.put_legal_hold(h.to_doc())
            holds[h.id] = h
        stores: dict[str, Any] = dict.fromkeys(ret.STORE_CLASSES, store)
        if repo:
            stores[ret.DataClass.cases] = repo
        periods = ret.Periods.from_settings(settings, days)
        plan = ret.plan(stores, periods, holds.values(), now, general_days=days)
        table = Table(title=f"retention plan ({now:%Y-%m-%d %H:%M} UTC)")
        for col in ("class", "days (UTC)", "records", "action"):
            table.add_column(col, overflow="fold")
        for row in ret.plan_text(plan):
            table.add_row(*(escape(x) for x in row))
        err.print(table if plan.lines else "nothing is older than its retention period")
        err.print("periods (days): " + ", ".join(f"{c.value} {periods.of(c)}" for c in ret.DataClass)
                  + f"; legal holds: {', '.join(sorted(holds)) or 'none'}")
        todo = list(plan.deleting())
        deleted: dict[str, int] = {}
        if todo and not dry_run:
            n = sum(ln.records for ln in todo)
            if not yes and not typer.confirm(f"delete {n} record(s) in {len(todo)} day(s)?", default=False,
                                             err=True):
                raise _fail("nothing deleted (answer yes, or pass --yes)", 1)
            deleted = ret.execute(plan, stores)
            err.print(f"deleted: {', '.join(f'{k} {v}' for k, v in deleted.items())}")
    finally:
        store.close()
        if repo:
            repo.close()
    doc: dict[str, Any] = {"retention_days": periods.events, "dry_run": dry_run, "deleted": deleted,
                           "deleted_events": deleted.get("events", 0),
                           "kept": [ln.to_json() for ln in plan.lines if not ln.deletes]}
    if fmt == "json":
        doc["plan"] = plan.to_json()
    sys.stdout.write(orjson.dumps(doc).decode() + "\n")


# --- demo ---------------------------------------------------------------------------------------

@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same traffic.")] = 7,
    days: Annotated[int, typer.Option(min=1, max=60, help="Days of traffic to generate.")] = 3,
    rules: Rules = None,
    data_dir: DataDir = None,
    write_logs: Annotated[Path | None, typer.Option(help="Also write the generated raw logs to this folder.")] = None,
) -> None:
    """Generate a small company's access traffic with injected attacks and run it through the pipeline."""
    from datetime import UTC, datetime, timedelta

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from access_audit.app import alert_sinks, build_embedded
    from access_audit.core.records import RawRecord
    from access_audit.demo.context import write_context
    from access_audit.demo.generator import generate, write_files
    from access_audit.ingest.memory import InMemoryBus
    from access_audit.testing import FrozenClock

    base = _settings(data_dir)
    # The demo company's identity directory and resource catalogue, as a user would write them.
    directory_file, resources_file = write_context(base.data_dir)
    settings = base.model_copy(update={"identity_file": directory_file, "resources_file": resources_file})
    records, scenarios = generate(seed=seed, days=days)
    if write_logs:
        files = write_files(records, write_logs)
        err.print(f"raw logs written: {', '.join(str(p) for p in files.values())}")
    with Progress(TextColumn("[bold]demo[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as progress:
        task = progress.add_task("records", total=len(records))
        # The demo's traffic is dated from a fixed Monday; a long demo reaches past today, so the
        # pipeline's clock stands after the traffic (else those records would be "in the future").
        end = max((r.timestamp for r in records), default=datetime.now(UTC))
        clock = FrozenClock(max(datetime.now(UTC), end + timedelta(hours=1)))
        sinks = alert_sinks(settings, progress.console, clock=clock)  # Slack with a token, else console; JSONL
        emb = build_embedded(settings, sinks=sinks, rules=rules, clock=clock)
        settle_heap()
        bus = InMemoryBus()
        source = bus.source("raw-logs")

        for i, r in enumerate(records):
            bus.produce_record("raw-logs", RawRecord(data=r.data, origin=f"{r.source}:{i + 1}", source=r.source,
                                                     log_type=r.log_type))
        emb.pipeline.run(source, batch_size=settings.batch_size,
                         on_batch=lambda res: progress.advance(task, res.events + res.dead_letters))
    for sink in sinks:
        sink.close()
    fired: dict[str, set[str]] = {}
    for a in emb.store.alerts(limit=100_000):
        fired.setdefault(a.rule_id, set()).add(a.id)
    table = Table(title="Injected scenarios", show_lines=False)
    table.add_column("scenario")
    table.add_column("expected rules")
    table.add_column("caught")
    for sc in scenarios:
        caught = [r for r in sc.expected_rules if r in fired]
        mark = "[green]yes[/]" if len(caught) == len(sc.expected_rules) else (
            "[yellow]partly[/]" if caught else "[red]no[/]")
        table.add_row(sc.id, ", ".join(sc.expected_rules), mark)
    err.print(table)
    # The whole path for a new user: the mass export becomes a breach case with a draft notification.
    from access_audit.breach.demo import demo_breach
    from access_audit.core.clock import SystemClock

    mass = next((sc for sc in scenarios if sc.id == "mass_export"), None)
    if mass is not None:
        demo_breach(mass, emb.store, settings, SystemClock(), err)
    st = emb.pipeline.stats
    err.print(f"{st.events} events, {st.dead_letters} dead letters, {st.alerts_new} alerts "
              f"-> {escape(str(settings.data_dir))} (try: access-audit status, access-audit query --user ...)")
    emb.store.close()


# --- query --------------------------------------------------------------------------------------

@app.command()
def query(
    q: Annotated[str | None, typer.Argument(help='Query, e.g. "user.name:alice AND NOT source.ip:10.0.0.0/8"')] = None,
    user: Annotated[str | None, typer.Option("--user", "-u")] = None,
    source_ip: Annotated[str | None, typer.Option("--source-ip", help="An address or a network (CIDR).")] = None,
    action: Annotated[str | None, typer.Option("--action")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome")] = None,
    resource: Annotated[str | None, typer.Option("--resource")] = None,
    log_type: Annotated[str | None, typer.Option("--log-type")] = None,
    since: Annotated[str | None, typer.Option(help="24h, 7d or an ISO time.")] = None,
    until: Annotated[str | None, typer.Option(help="24h, 7d or an ISO time.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000)] = 50,
    top: Annotated[list[str] | None, typer.Option(
        "--top", help="Count the events instead of listing them: the most frequent values of this field "
        "(repeatable), --limit of each.")] = None,
    histogram: Annotated[str | None, typer.Option(
        "--histogram", help="Count the events instead of listing them: events per interval of @timestamp "
        "(30s, 5m, 1h, 1d, 1w).")] = None,
    fmt: Fmt = "table",
    data_dir: DataDir = None,
) -> None:
    """Search stored access events: who accessed X, what did Y do (or count them: --top, --histogram)."""
    from access_audit.api.audit import audit_cli
    from access_audit.store.opening import open_store
    from access_audit.store.query import And, Query, parse_query, parse_when, term_for

    settings = _settings(data_dir)
    try:
        terms: list[Any] = [parse_query(q)] if q else []
        for fname, val in (("user.name", user), ("source.ip", source_ip), ("event.action", action),
                           ("event.outcome", outcome), ("resource.name", resource), ("event.dataset", log_type)):
            if val is not None:
                terms.append(term_for(fname, val))
        expr = terms[0] if len(terms) == 1 else And(tuple(terms)) if terms else Query().expr
        qq = Query(expr=expr, since=parse_when(since) if since else None,
                   until=parse_when(until) if until else None, limit=limit)
    except QueryError as e:
        raise _fail(str(e)) from None
    if fmt not in ("table", "json", "csv"):
        raise _fail(f"unknown format {fmt!r}: use table, json or csv")
    if settings.store == "sqlite" and not settings.sqlite_path.exists():
        raise _fail(f"no store at {settings.sqlite_path}: run 'access-audit run' or 'access-audit demo' first")
    store = open_store(settings)
    if top or histogram:
        try:
            _aggregate(store, qq, q or "*", list(dict.fromkeys(top or ())), histogram, fmt)
        finally:
            store.close()
        return
    try:
        if fmt != "table":  # exports stream page by page (search_after), with progress when long
            audit_cli(store, "export", f"{q or '*'} (limit {limit}, {fmt})", expr=expr)
            _export(store, qq, fmt)
            return
        events = store.search(qq)
        audit_cli(store, "search", q or "*", expr=expr, hits=len(events))
    finally:
        store.close()
    rows = [_row(ev) for ev in events]
    t = Table(show_header=True, header_style="bold")
    for c in COLUMNS:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*(escape(str(r[c] or "")) for c in r))
    out.print(t)
    err.print(f"{len(rows)} event(s)")


COLUMNS = ("@timestamp", "log_type", "action", "outcome", "user", "source_ip", "host", "resource")
EXPORT_PAGE = 1000


def _aggregate(store: Any, qq: Any, text: str, fields: list[str], interval: str | None, fmt: str) -> None:
    """``query --top/--histogram``: the API's /api/aggregations on the command line (the same store
    methods and limits), recorded in the self-audit like a search."""
    from access_audit.api.audit import audit_cli, csv_safe
    from access_audit.core.csvcells import LINE_END

    try:  # the stores' aggregations ignore the page: --limit is the size of each top list
        if len(fields) > 10:
            raise QueryError("at most 10 --top fields at once")
        tops = {f: store.aggregate(qq, f, min(qq.limit, 1000)) for f in fields}
        hist = store.histogram(qq, interval) if interval else None
    except QueryError as e:
        raise _fail(str(e)) from None
    audit_cli(store, "aggregate", f"{text} by {', '.join(fields + ([f'@timestamp/{interval}'] if interval else []))}",
              expr=qq.expr, hits=sum(n for _, n in hist) if hist is not None else None)
    rows = [{"field": f, "value": v, "events": n} for f, got in tops.items() for v, n in got]
    buckets = [{"start": t.isoformat(), "events": n} for t, n in hist or ()]
    if fmt == "json":
        for r in rows:
            sys.stdout.write(orjson.dumps(r).decode() + "\n")
        for b in buckets:
            sys.stdout.write(orjson.dumps({"interval": interval, **b}).decode() + "\n")
        return
    if fmt == "csv":
        if rows:
            w = csv.DictWriter(sys.stdout, fieldnames=["field", "value", "events"], lineterminator=LINE_END)
            w.writeheader()
            w.writerows(csv_safe(r) for r in rows)
        if buckets:
            w = csv.DictWriter(sys.stdout, fieldnames=["start", "events"], lineterminator=LINE_END)
            w.writeheader()
            w.writerows(buckets)
        return
    for f, got in tops.items():
        t = Table(title=f"top {f}", show_header=True, header_style="bold")
        t.add_column(f, overflow="fold")
        t.add_column("events", justify="right")
        for v, n in got:
            t.add_row(escape(str(v)), str(n))
        out.print(t)
    if hist is not None:
        t = Table(title=f"events per {interval}", show_header=True, header_style="bold")
        t.add_column("start")
        t.add_column("events", justify="right")
        for b in buckets:
            t.add_row(b["start"], str(b["events"]))
        out.print(t)


def _export(store: Any, qq: Any, fmt: str) -> int:
    """Write the matching events as JSON lines or CSV, one page at a time (search_after), with a
    progress bar on stderr when more than one page is coming. Returns how many were written."""
    from dataclasses import replace

    from access_audit.api.audit import csv_safe
    from access_audit.core.csvcells import LINE_END

    page_size = EXPORT_PAGE
    total = min(qq.limit, store.count(qq)) if qq.limit > page_size else None
    writer = csv.DictWriter(sys.stdout, fieldnames=list(COLUMNS), lineterminator=LINE_END) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    done = 0
    with _export_progress(total, page_size) as progress:
        task = progress.add_task("events", total=total)
        after = None
        while done < qq.limit:
            page = store.search(replace(qq, limit=min(page_size, qq.limit - done), after=after))
            for ev in page:
                if writer:
                    writer.writerow(csv_safe(_row(ev)))
                else:
                    sys.stdout.write(orjson.dumps(ev.to_doc()).decode() + "\n")
            done += len(page)
            progress.advance(task, len(page))
            if len(page) < page_size:
                break
            after = (page[-1].timestamp.isoformat(), page[-1].id)
    sys.stdout.flush()
    err.print(f"{done} event(s)")
    return done


class _NoProgress:
    """What a disabled rich Progress does (nothing), without importing rich.progress (~5 ms)."""

    def __enter__(self) -> "_NoProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None) -> int:
        return 0

    def advance(self, task: int, advance: float = 1) -> None:
        return None


def _export_progress(total: int | None, page_size: int) -> Any:
    """The export's progress bar on stderr: only when more than one page is coming."""
    if total is None or total <= page_size:
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]export[/]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err, transient=True, redirect_stdout=False, redirect_stderr=False)  # stdout: the export


def _row(ev: Any) -> dict[str, Any]:
    return {"@timestamp": ev.timestamp.isoformat(), "log_type": ev.event.dataset, "action": ev.event.action,
            "outcome": ev.event.outcome.value, "user": ev.user.name if ev.user else None,
            "source_ip": ev.source.ip if ev.source else None, "host": ev.host.name if ev.host else None,
            "resource": (ev.resource.name or ev.resource.id) if ev.resource else None}


# --- subject access report ------------------------------------------------------------------------

@app.command("subject-report")
def subject_report(
    subject_id: Annotated[str, typer.Argument(help="The data subject's id, as in resource.subject_ids.")],
    since: Annotated[str | None, typer.Option(help="24h, 7d or an ISO time.")] = None,
    until: Annotated[str | None, typer.Option(help="24h, 7d or an ISO time.")] = None,
    q: Annotated[str | None, typer.Option("--query", "-q", help="Narrow further with the query language.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table (per actor) | json (the whole report) | "
                                     "csv (one row per access)")] = "table",
    data_dir: DataDir = None,
) -> None:
    """Who accessed the data of one data subject: when, from where, through which service, for what
    declared purpose (Art. 15 GDPR requests, investigations)."""
    from datetime import UTC, datetime

    from access_audit.api.audit import audit_cli, csv_safe
    from access_audit.core.csvcells import LINE_END
    from access_audit.store.opening import open_store
    from access_audit.store.query import parse_query, parse_when
    from access_audit.store.subject_report import CSV_COLUMNS, access_row
    from access_audit.store.subject_report import subject_report as build

    settings = _settings(data_dir)
    if fmt not in ("table", "json", "csv"):
        raise _fail(f"unknown format {fmt!r}: use table, json or csv")
    try:
        extra = parse_query(q) if q else None
        s, u = (parse_when(since) if since else None), (parse_when(until) if until else None)
    except QueryError as e:
        raise _fail(str(e)) from None
    if settings.store == "sqlite" and not settings.sqlite_path.exists():
        raise _fail(f"no store at {settings.sqlite_path}: run 'access-audit run' or 'access-audit demo' first")
    store = open_store(settings)
    try:
        rep = build(store, subject_id, now=datetime.now(UTC), since=s, until=u, extra=extra)
        audit_cli(store, "subject_report", subject_id, expr=extra, hits=rep.total, subject_ids=[subject_id])
    finally:
        store.close()
    if fmt == "json":
        sys.stdout.write(orjson.dumps(rep.to_json()).decode() + "\n")
        return
    if fmt == "csv":
        w = csv.DictWriter(sys.stdout, fieldnames=list(CSV_COLUMNS), lineterminator=LINE_END)
        w.writeheader()
        w.writerows(csv_safe(access_row(ev)) for ev in rep.accesses)
        return
    t = Table(title=f"Accesses to the data of {escape(rep.subject_id)}", show_header=True, header_style="bold")
    for c in ("who", "first", "last", "events", "failed", "from", "through", "resources", "declared purpose"):
        t.add_column(c, overflow="fold")
    for a in rep.actors:
        j = a.to_json()
        t.add_row(escape(a.user or "(no user)"), j["first"][:19], j["last"][:19], str(a.events), str(a.failures),
                  escape(", ".join(j["source_ips"])), escape(", ".join(j["services"])),
                  escape(", ".join(j["resources"])), escape(", ".join(j["purposes"])))
    out.print(t)
    without = rep.to_json(with_events=False)["without_purpose"]
    err.print(f"{rep.total} access(es) by {len(rep.actors)} actor(s); {without} without a declared purpose"
              + (" [yellow](truncated: narrow with --since/--until)[/]" if rep.truncated else ""))


# --- sources ------------------------------------------------------------------------------------

@app.command()
def sources(
    fmt: Fmt = "table",
    at: Annotated[str | None, typer.Option("--at", help="Judge as of this time (ISO 8601 or e.g. 2h ago; default "
                                           "now; for a replayed log, its last event time).")] = None,
    alert: Annotated[bool, typer.Option("--alert", help="Raise an alert (log_source_silent) for every silent or "
                                        "dropped source, to the configured sinks.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Log sources (log type x host or cloud account) and whether they still send: ok, silent (no
    event in ACCESS_AUDIT_SOURCE_QUIET_MINUTES), dropped (under ACCESS_AUDIT_SOURCE_DROP_RATIO of the
    rate of the day before), sparse (too few events to judge). Exits 1 when a source is silent or
    dropped. The scheduler runs the same check and raises the alerts."""
    from datetime import UTC, datetime

    from access_audit import sources as src
    from access_audit.app import alert_sinks, open_store
    from access_audit.store.query import parse_when

    _check_format(fmt)
    settings = _settings(data_dir)
    if settings.store == "sqlite" and not settings.sqlite_path.exists():
        raise _fail(f"no store at {settings.sqlite_path}: run 'access-audit run' or 'access-audit demo' first")
    now = parse_when(at) if at else datetime.now(UTC)
    store = open_store(settings)
    try:
        rows, silent = src.check(store, settings, now)
        raised = src.raise_alerts(store, alert_sinks(settings, err), silent) if alert else []
    finally:
        store.close()
    cols = ("status", "dataset", "key_field", "key", "baseline", "recent", "expected")
    if fmt in ("json", "csv"):
        _write_rows([r.to_json() for r in rows], cols, fmt, "")
    else:
        t = Table(title=f"log sources as of {now.isoformat(timespec='seconds')} (quiet window "
                        f"{settings.source_quiet_minutes:g} min, baseline {settings.source_baseline_hours:g} h)")
        for c in ("status", "source", "events in baseline", "in quiet window", "expected"):
            t.add_column(c, justify="right" if c not in ("status", "source") else "left")
        colour = {"silent": "red", "dropped": "yellow", "ok": "green", "sparse": "dim"}
        for r in rows:
            t.add_row(f"[{colour[r.status]}]{r.status}[/]", escape(r.name), str(r.baseline), str(r.recent),
                      f"{r.expected:.0f}")
        out.print(t)
        if not rows:
            err.print("no events in the baseline period or the quiet window")
    if raised:
        err.print(f"{sum(1 for _, n in raised if n)} new alert(s), {sum(1 for _, n in raised if not n)} update(s)")
    if any(r.status in ("silent", "dropped") for r in rows):
        raise typer.Exit(1)


# --- status -------------------------------------------------------------------------------------

@app.command()
def status(fmt: Fmt = "table", data_dir: DataDir = None) -> None:
    """Counts of events, dead letters and alerts, by log type and by rule."""
    from access_audit.store.opening import open_store

    _check_format(fmt)
    settings = _settings(data_dir)
    if settings.store == "sqlite" and not settings.sqlite_path.exists():
        raise _fail(f"no store at {settings.sqlite_path}: run 'access-audit run' or 'access-audit demo' first")
    store = open_store(settings)
    st = store.stats()
    if settings.bus == "kafka":
        st["topology"] = _topology_status(settings, store)
    store.close()
    if fmt == "json":
        sys.stdout.write(orjson.dumps(st).decode() + "\n")
        return
    if fmt == "csv":
        rows = [*({"what": "events", "key": k, "count": n} for k, n in sorted(st["events"]["by_log_type"].items())),
                *({"what": "dead_letters", "key": k, "count": n}
                  for k, n in sorted(st["dead_letters"]["by_log_type"].items())),
                *({"what": "alerts", "key": k, "count": v["alerts"]} for k, v in st["alerts"]["by_rule"].items())]
        _write_rows(rows, ("what", "key", "count"), "csv", "")
        return
    t = Table(title=f"access-audit status ({settings.data_dir})")
    t.add_column("what")
    t.add_column("key")
    t.add_column("count", justify="right")
    for lt, n in sorted(st["events"]["by_log_type"].items()):
        t.add_row("events", lt, str(n))
    for lt, n in sorted(st["dead_letters"]["by_log_type"].items()):
        t.add_row("dead letters", lt, str(n))
    for rid, v in st["alerts"]["by_rule"].items():
        t.add_row("alerts", rid, f"{v['alerts']} ({v['events']} events)")
    t.add_row("[bold]total[/]", "events / dead letters / alerts",
              f"{st['events']['total']} / {st['dead_letters']['total']} / {st['alerts']['total']}")
    out.print(t)
    topo = st.get("topology")
    if topo:
        t = Table(title=f"Kafka topology ({topo['topology']}): lag and rule state per partition")
        for col in ("topic", "key", "partition", "committed", "lag", "state rows"):
            t.add_column(col, justify="right" if col in ("partition", "committed", "lag", "state rows") else "left")
        for row in topo["partitions"]:
            t.add_row(row["topic"], row.get("key") or "", str(row["partition"]), str(row["committed"]),
                      str(row["lag"]), "" if row.get("state_rows") is None else str(row["state_rows"]))
        out.print(t)
        if topo.get("error"):
            err.print(f"[yellow]{topo['error']}[/]")


def _topology_status(settings: Any, store: Any) -> dict[str, Any]:
    """The worker topology (stage 1 raw topics, stage 2 hand-over topics and their rules), the lag of
    each partition, and the rule state each hand-over partition holds in the store."""
    from access_audit.app import load_ruleset
    from access_audit.core.errors import BusError
    from access_audit.handover import Topology

    topology = Topology.of(load_ruleset([*settings.rules], strict=False).rules, settings.kafka_group_id)
    sizes = store.state_namespaces() if hasattr(store, "state_namespaces") else {}
    per_label: dict[str, int] = {}
    for ns, (rows, _) in sizes.items():
        label = ns.split("/", 1)[1] if "/" in ns else ""
        per_label[label] = per_label.get(label, 0) + rows
    res: dict[str, Any] = {"topology": settings.kafka_topology, "stages": {
        "raw": {"group": settings.kafka_group_id, "topics": list(settings.kafka_topics)},
        "handover": {"group": topology.consumer_group, "topics": topology.describe()}}, "partitions": []}
    try:
        from access_audit.ingest.kafka import group_lag

        stages: list[tuple[str, list[str], Topology | None]] = [
            (settings.kafka_group_id, list(settings.kafka_topics), None)]
        if settings.kafka_topology == "rekey":
            stages.append((topology.consumer_group, list(topology.topics), topology))
        for group, topics, topo in stages:
            for (topic, p), (committed, lag) in sorted(group_lag(settings, group, topics).items()):
                row: dict[str, Any] = {"topic": topic, "partition": p, "committed": committed, "lag": lag}
                if topo is not None:
                    row["key"] = "+".join(topo.fields[topic]) or "(none)"
                    row["state_rows"] = per_label.get(topo.label(topic, p), 0)
                res["partitions"].append(row)
    except BusError as e:
        res["error"] = f"Kafka not reachable, no lag shown: {e}"
    return res


# --- verify -------------------------------------------------------------------------------------

@app.command()
def verify(
    since: Annotated[str | None, typer.Option(help="Check records from this time on (24h, 7d, ISO time); "
                                              "the chain itself is always checked whole.")] = None,
    fmt: Fmt = "table",
    data_dir: DataDir = None,
) -> None:
    """Walk the tamper-evidence chain and every stored record: report each record altered, deleted or
    inserted behind the application's back, with its place. Exit 1 when anything is found."""
    from access_audit.store.chain import load_key
    from access_audit.store.chain import verify as verify_chain
    from access_audit.store.opening import open_store
    from access_audit.store.query import parse_when

    settings = _settings(data_dir)
    if settings.store == "sqlite" and not settings.sqlite_path.exists():
        raise _fail(f"no store at {settings.sqlite_path}: nothing to verify")
    if not settings.chain_key_path.exists():
        raise _fail(f"no chain key at {settings.chain_key_path} (ACCESS_AUDIT_CHAIN_KEY_FILE)")
    try:
        when = parse_when(since) if since else None
    except QueryError as e:
        raise _fail(str(e)) from None
    store = open_store(settings.model_copy(update={"chain": False}))
    cases = None
    if settings.breach_path.exists():
        from access_audit.breach.repo import BreachRepo

        cases = BreachRepo(settings.breach_path)  # read only: it chains nothing itself
    try:
        rep = verify_chain(store, load_key(settings.chain_key_path), settings.chain_anchor_path, since=when,
                           cases=cases)
    finally:
        store.close()
        if cases is not None:
            cases.close()
    if fmt == "json":
        sys.stdout.write(orjson.dumps(rep.to_json()).decode() + "\n")
    else:
        t = Table(title=f"access-audit verify ({settings.store})")
        for c in ("problem", "kind", "id", "where", "chain entry", "detail"):
            t.add_column(c)
        for f in rep.findings:
            t.add_row(f.problem, f.kind, escape(f.id), escape(f.where), escape(f.chain), escape(f.detail))
        if rep.findings:
            out.print(t)
        counts = ", ".join(f"{n} {k}" for k, n in sorted(rep.records.items())) or "no records"
        (out if rep.ok else err).print(
            f"{'[green]ok[/]' if rep.ok else '[red]FAILED[/]'}: {rep.entries} chain entries of {rep.writers} "
            f"writer(s), {counts}; {len(rep.findings)} problem(s)"
            + (f"; {rep.unanchored} entries not in the anchor yet" if rep.unanchored else ""))
    if not rep.ok:
        raise typer.Exit(1)


@app.command()
def erase(
    subject: Annotated[str, typer.Argument(help="The data subject as stored: a user name, e-mail, user id or "
                                           "subject id (compared without case).")],
    request: Annotated[str | None, typer.Option(help="The request's reference (ticket, letter): kept in the "
                                                "chain and the self-audit; default a random id.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the events; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Erase without asking.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Erase a data subject from the stored events (GDPR Art. 17) by pseudonymisation.

    Their personal fields, and the raw record and free text of their events, become unreadable
    (a key made for this erasure and destroyed at once); the people who acted on them stay named.
    The erasure is chained (verify still passes, and fails if the data is put back) and
    recorded in the self-audit with the request, never the subject. Alerts, dead letters and
    breach cases are not changed (see docs/reliability.md).
    """
    from access_audit.api.audit import audit_cli
    from access_audit.store.erasure import erase_subject
    from access_audit.store.opening import open_store

    settings = _settings(data_dir)
    if not settings.chain:
        raise _fail("erase needs the tamper-evidence chain (ACCESS_AUDIT_CHAIN): without it verify could not "
                    "tell an erasure from an edit")
    if not subject.strip():
        raise _fail("the data subject is empty")
    store = open_store(settings)
    try:
        plan = erase_subject(store, subject, request=request, dry_run=True)
        err.print(f"{plan.events} event(s) name this data subject")
        res = plan
        if not dry_run:
            if not yes and not typer.confirm(f"erase the data subject from {plan.events} event(s) and the rule "
                                             "state?", default=False, err=True):
                raise _fail("nothing erased (answer yes, or pass --yes)", 1)
            res = erase_subject(store, subject, request=plan.request)
            audit_cli(store, "erasure", hits=res.events, reason=f"GDPR Art. 17 request {res.request}",
                      erasure_request=res.request, chain_entry=res.chain_entry, state_rows=res.state_rows)
            err.print(f"erased: {res.events} event(s), {res.state_rows} rule-state row(s)"
                      + (f"; chain entry {res.chain_entry}" if res.chain_entry else ""))
    finally:
        store.close()
    sys.stdout.write(orjson.dumps({**res.to_json(), "dry_run": dry_run}).decode() + "\n")


# --- alerts and dead letters ----------------------------------------------------------------------

FORMATS = ("table", "json", "csv")
ALERT_COLUMNS = ("id", "status", "severity", "rule_id", "title", "count", "first_seen", "last_seen", "query")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise _fail(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")


def _open_existing_store(data_dir: Path | None) -> Any:
    from access_audit.store.opening import open_store

    settings = _settings(data_dir)
    if settings.store == "sqlite" and not settings.sqlite_path.exists():
        raise _fail(f"no store at {settings.sqlite_path}: run 'access-audit run' or 'access-audit demo' first")
    return open_store(settings)


def _write_rows(rows: list[dict[str, Any]], columns: tuple[str, ...], fmt: str, title: str) -> None:
    if fmt == "json":
        for r in rows:
            sys.stdout.write(orjson.dumps(r).decode() + "\n")
    elif fmt == "csv":
        from access_audit.api.audit import csv_safe
        from access_audit.core.csvcells import LINE_END

        w = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore", lineterminator=LINE_END)
        w.writeheader()
        w.writerows(csv_safe(r) for r in rows)  # formula-escaped: an alert title "=HYPERLINK(..." stays text
    else:
        t = Table(title=title, show_header=True, header_style="bold")
        for c in columns:
            t.add_column(c, overflow="fold")
        for r in rows:
            t.add_row(*(escape(str(r.get(c) if r.get(c) is not None else "")) for c in columns))
        out.print(t)


def _find_alert(store: Any, alert_id: str) -> Any:
    a = store.alert(alert_id)
    if a is not None:
        return a
    matches = [x for x in store.alerts(limit=1_000_000) if x.id.startswith(alert_id)] if len(alert_id) >= 4 else []
    if len(matches) == 1:
        return matches[0]
    raise _fail(f"no alert {alert_id!r}" if not matches else
                f"{len(matches)} alerts start with {alert_id!r}: give more of the id")


@alerts_app.command("list")
def alerts_list(
    status: Annotated[str | None, typer.Option(help="open, acknowledged, escalated, false_positive, resolved")]
    = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000)] = 50,
    fmt: Fmt = "table",
    data_dir: DataDir = None,
) -> None:
    """The latest alerts, newest last-seen first."""
    from access_audit.core.alerts import AlertStatus

    _check_format(fmt)
    if status is not None and status not in {s.value for s in AlertStatus}:
        raise _fail(f"unknown status {status!r}: use {', '.join(s.value for s in AlertStatus)}")
    from access_audit.api.audit import audit_cli

    store = _open_existing_store(data_dir)
    try:
        alerts = store.alerts(rule_id=rule, limit=limit if status is None else 1_000_000)
        if status is not None:
            alerts = [a for a in alerts if a.status.value == status][:limit]
        # the read is recorded before anything is shown (issue 12): alerts name users and subjects
        audit_cli(store, "alert_list", f"status={status or '*'} rule={rule or '*'} limit={limit} ({fmt})",
                  hits=len(alerts))
    finally:
        store.close()
    rows = [{**a.to_doc()} for a in alerts]
    if fmt == "table":
        rows = [{**r, "id": r["id"][:12], "first_seen": r["first_seen"][:19], "last_seen": r["last_seen"][:19]}
                for r in rows]
    _write_rows(rows, ALERT_COLUMNS if fmt != "table" else ALERT_COLUMNS[:-1], fmt, "alerts")
    err.print(f"{len(rows)} alert(s)" + ("; show one with: access-audit alerts show <id>" if rows else ""))


@alerts_app.command("show")
def alerts_show(alert_id: Annotated[str, typer.Argument(help="The alert id (or its first 4+ characters).")],
                fmt: Annotated[str, typer.Option("--format", "-f", help="table | json")] = "table",
                data_dir: DataDir = None) -> None:
    """One alert: what, who, where, how many, its history, and the query that shows the evidence."""
    if fmt not in ("table", "json"):
        raise _fail(f"unknown format {fmt!r}: use table or json")
    from access_audit.api.audit import audit_cli

    store = _open_existing_store(data_dir)
    try:
        a = _find_alert(store, alert_id)
        audit_cli(store, "alert_read", a.id, hits=1)
    finally:
        store.close()
    doc = a.to_doc()
    if fmt == "json":
        sys.stdout.write(orjson.dumps(doc).decode() + "\n")
        return
    t = Table(show_header=False, title=escape(a.title))
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    for k in ("id", "status", "severity", "risk_score", "rule_id", "dedup_key", "count", "first_seen", "last_seen",
              "user", "source_ip", "host", "resource", "data_categories", "mitre", "description"):
        v = doc.get(k)
        if v not in (None, "", []):
            t.add_row(k, escape(", ".join(map(str, v)) if isinstance(v, list) else str(v)))
    for h in (a.context.get("history") or []):
        t.add_row("history", escape(f"{h.get('at', '')[:19]} {h.get('action')} by {h.get('by')}"))
    if a.query:
        t.add_row("evidence", escape(f'access-audit query "{a.query}"'))
    out.print(t)


def _set_alert_status(alert_id: str, action: str, status: str, data_dir: Path | None, note: str | None) -> None:
    import getpass
    from datetime import UTC, datetime

    from access_audit.core.alerts import AlertStatus

    store = _open_existing_store(data_dir)
    try:
        a = _find_alert(store, alert_id)
        if a.status.value == status:
            err.print(f"alert {a.id} is already {status}")
            return
        entry = {"action": action, "status": status, "by": f"cli:{getpass.getuser()}",
                 "at": datetime.now(UTC).isoformat(), **({"note": note} if note else {})}
        a.context.setdefault("history", []).append(entry)
        a.status = AlertStatus(status)
        store.write_alerts([a], lifecycle=True)
    finally:
        store.close()
    err.print(f"alert {a.id} ({escape(a.rule_id)}) is now {status}")


@alerts_app.command("ack")
def alerts_ack(alert_id: Annotated[str, typer.Argument(help="The alert id (or its first 4+ characters).")],
               note: Annotated[str | None, typer.Option(help="Why, for the history.")] = None,
               data_dir: DataDir = None) -> None:
    """Acknowledge an alert: someone is looking at it."""
    _set_alert_status(alert_id, "ack", "acknowledged", data_dir, note)


@alerts_app.command("resolve")
def alerts_resolve(alert_id: Annotated[str, typer.Argument(help="The alert id (or its first 4+ characters).")],
                   note: Annotated[str | None, typer.Option(help="What was done, for the history.")] = None,
                   data_dir: DataDir = None) -> None:
    """Resolve an alert: handled."""
    _set_alert_status(alert_id, "resolve", "resolved", data_dir, note)


@dead_app.command("list")
def dead_letters_list(
    limit: Annotated[int, typer.Option(min=1, max=1_000_000)] = 50,
    log_type: Annotated[str | None, typer.Option("--log-type", "-t", help="Only this log type.")] = None,
    reason: Annotated[str | None, typer.Option(help="Only reasons that contain this text.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Also the replayed ones.")] = False,
    fmt: Fmt = "table",
    data_dir: DataDir = None,
) -> None:
    """The stored dead letters with their reason, where they came from, and the raw record.
    Replayed ones (see ``replay``) are left out unless ``--all``."""
    from access_audit.api.audit import audit_cli

    _check_format(fmt)
    store = _open_existing_store(data_dir)
    try:
        replays = _replays(store)
        rows = store.dead_letters(limit=1_000_000 if (log_type or reason or replays) else limit)
        rows = [{**r, "replayed": replays.get(r["id"], {}).get("at", "")} for r in rows
                if (not log_type or r.get("log_type") == log_type)
                and (not reason or reason in (r.get("reason") or "")) and (show_all or r["id"] not in replays)][:limit]
        # dead letters hold raw records (names, addresses): the read is in the self-audit (issue 12)
        audit_cli(store, "dead_letter_list", f"log_type={log_type or '*'} reason={reason or '*'} all={show_all} "
                  f"limit={limit} ({fmt})", hits=len(rows))
    finally:
        store.close()
    cols = ("id", "received_at", "log_type", "reason", "origin", "raw") + (("replayed",) if show_all else ())
    if fmt == "table":
        rows = [{**r, "id": r["id"][:12], "received_at": str(r["received_at"])[:19], "raw": str(r["raw"])[:120]}
                for r in rows]
    _write_rows(rows, cols, fmt, "dead letters")
    hidden = "" if show_all or not replays else f" ({len(replays)} replayed not shown: --all)"
    err.print(f"{len(rows)} dead letter(s){hidden}")


REPLAYS_NS = "dead-letter-replays"  # rule-state rows: dead letter id -> {at, by, events}


def _replays(store: Any) -> dict[str, dict[str, Any]]:
    return {k: orjson.loads(v) for k, v in store.read_state(REPLAYS_NS)}


def _find_dead_letter(store: Any, ref: str) -> tuple[str, Any]:
    if len(ref) < 4:
        raise _fail("give at least 4 characters of the dead letter's id ('dead-letters list' shows them)")
    found = [(i, d) for i, d in store.dead_letter_records(limit=10_000_000) if i.startswith(ref.lower())]
    if not found:
        raise _fail(f"no dead letter {ref!r}")
    if len(found) > 1:
        raise _fail(f"{ref!r} names {len(found)} dead letters: give more characters")
    return found[0]


@dead_app.command("show")
def dead_letters_show(
    ref: Annotated[str, typer.Argument(help="The dead letter's id (or its first 4+ characters).")],
    data_dir: DataDir = None,
) -> None:
    """One dead letter whole: reason, where it came from, the raw bytes exactly (non-UTF-8 bytes as \\xNN)."""
    from access_audit.api.audit import audit_cli

    store = _open_existing_store(data_dir)
    try:
        did, d = _find_dead_letter(store, ref)
        replay = _replays(store).get(did)
        audit_cli(store, "dead_letter_read", did, hits=1)
    finally:
        store.close()
    import re

    # control characters and bytes that are not UTF-8 as \xNN: what is shown is what was received
    raw = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", lambda m: f"\\x{ord(m[0]):02x}",
                 d.raw.decode("utf-8", "backslashreplace"))
    doc = {"id": did, **d.to_row(), "raw": raw, "bytes": len(d.raw),
           "replayed": replay}
    if sys.stdout.isatty():
        for k, v in doc.items():
            out.print(f"[bold]{k}[/]: {escape(str(v) if v is not None else '')}")
    else:
        sys.stdout.write(orjson.dumps(doc).decode() + "\n")


@dead_app.command("replay")
def dead_letters_replay(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead letter ids (4+ characters each); default: all "
                                                         "that match the filters.")] = None,
    log_type: Annotated[str | None, typer.Option("--log-type", "-t", help="Only this log type.")] = None,
    reason: Annotated[str | None, typer.Option(help="Only reasons that contain this text.")] = None,
    as_type: Annotated[str | None, typer.Option("--as", help="Parse them as this log type (else as recorded, "
                                                              "or by content).")] = None,
    year: Annotated[int | None, typer.Option(help="Year for syslog lines without one.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would parse now.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Run dead letters through the pipeline again (after a parser fix, or with ``--as``): those that
    parse now are stored as events and checked by the rules; the dead letter itself is kept as
    evidence and marked replayed (``list --all`` shows it). Replaying twice adds nothing."""
    import getpass
    from datetime import UTC, datetime

    from access_audit.app import alert_sinks, build_embedded
    from access_audit.core.records import RawRecord
    from access_audit.ingest.memory import InMemoryBus
    from access_audit.parse.base import known_log_types, parser_names

    if as_type and as_type not in known_log_types():
        raise _fail(f"unknown log type {as_type!r}; known: {', '.join(parser_names())}")
    settings = _settings(data_dir)
    if settings.store == "sqlite" and not settings.sqlite_path.exists():
        raise _fail(f"no store at {settings.sqlite_path}: run 'access-audit run' or 'access-audit demo' first")
    emb = build_embedded(settings, sinks=alert_sinks(settings, err))
    store = emb.store
    try:
        done = _replays(store)
        if ids:
            chosen = [_find_dead_letter(store, i) for i in ids]
        else:
            chosen = [(i, d) for i, d in store.dead_letter_records(limit=10_000_000)
                      if i not in done and (not log_type or d.log_type == log_type)
                      and (not reason or reason in d.reason)]
        ok: list[tuple[str, RawRecord, int]] = []
        failed: dict[str, int] = {}
        for did, d in chosen:
            if did in done:
                err.print(f"  {did[:12]} was replayed on {done[did]['at']}: skipped")
                continue
            # a stream of its own: the events' ids are the same on every replay (no duplicates)
            rec = RawRecord(data=d.raw, origin=d.origin, source=d.source, log_type=as_type or d.log_type,
                            year=year, stream=f"dead-letter:{did}", occurrence=0)
            res = emb.pipeline.registry.parse(rec)
            if res.events:
                ok.append((did, rec, len(res.events)))
            else:
                why = res.dead_letters[0].reason if res.dead_letters else "no events"
                failed[why] = failed.get(why, 0) + 1
        err.print(f"{len(chosen)} dead letter(s) chosen: {len(ok)} parse now, {sum(failed.values())} still fail")
        for why, n in sorted(failed.items(), key=lambda x: -x[1])[:10]:
            err.print(f"  still failing: {n} x {escape(why)}")
        if dry_run or not ok:
            return
        bus = InMemoryBus()
        source = bus.source("replay")
        for _, rec, _n in ok:
            bus.produce_record("replay", rec)
        emb.pipeline.run(source, batch_size=settings.batch_size)
        at, by = datetime.now(UTC).isoformat(), f"cli:{getpass.getuser()}"
        store.write_state([(REPLAYS_NS, did, orjson.dumps({"at": at, "by": by, "events": n, "as": rec.log_type}))
                           for did, rec, n in ok], [])
        st = emb.pipeline.stats
        err.print(f"replayed {len(ok)} dead letter(s): {st.events} events ({st.events_new} new), "
                  f"{st.alerts_new} new alerts")
        if not sys.stdout.isatty():
            sys.stdout.write(orjson.dumps({"chosen": len(chosen), "replayed": len(ok), "events": st.events,
                                           "events_new": st.events_new, "alerts_new": st.alerts_new,
                                           "still_failing": failed}).decode() + "\n")
    finally:
        store.close()


# --- detectors ----------------------------------------------------------------------------------

@detectors_app.command("test")
def detectors_test(rules: Rules = None, only: Annotated[str | None, typer.Option(help="Rule id.")] = None,
                   fmt: Fmt = "table") -> None:
    """Run every rule's inline positive and negative tests."""
    from access_audit.detect.loader import load_rules
    from access_audit.detect.testrunner import run_rule_tests

    _check_format(fmt)
    rs = load_rules(rules or [], include_default=True)
    for e in rs.errors:
        err.print(f"[red]lint[/] {escape(str(e))}")
    selected = [r for r in rs.rules if only is None or r.id == only]
    results = run_rule_tests(selected)
    failed = [r for r in results if not r.passed]
    if fmt == "json":
        for r in results:
            sys.stdout.write(orjson.dumps(r.__dict__).decode() + "\n")
    elif fmt == "csv":
        _write_rows([r.__dict__ for r in results], tuple(results[0].__dict__) if results else ("rule_id",), "csv", "")
    else:
        for r in results:
            mark = "[green]PASS[/]" if r.passed else "[red]FAIL[/]"
            why = f" -- {escape(r.message)}" if r.message else ""
            out.print(f"{mark} {escape(r.rule_id)}: {escape(r.name)}{why}")
        out.print(f"{len(results) - len(failed)} passed, {len(failed)} failed ({len(selected)} rules)")
    if failed or rs.errors:
        raise typer.Exit(1)


@detectors_app.command("lint")
def detectors_lint(rules: Rules = None) -> None:
    """Check every rule file and report every problem with file:line."""
    from access_audit.detect.loader import load_rules

    rs = load_rules(rules or [], include_default=True)
    for e in rs.errors:
        out.print(escape(str(e)))
    out.print(f"{len(rs.files)} files, {len(rs.rules)} rules, {len(rs.errors)} problems")
    if rs.errors:
        raise typer.Exit(1)


@detectors_app.command("eval")
def detectors_eval(
    days: Annotated[int, typer.Option(min=1, max=60, help="Days of demo traffic.")] = 30,
    seed: Annotated[int, typer.Option(help="Demo random seed.")] = 7,
    rules: Rules = None,
    fmt: Fmt = "table",
    check: Annotated[bool, typer.Option("--check", help="Exit 1 unless every rule reaches the targets.")] = False,
    min_precision: Annotated[float, typer.Option(help="Target precision per rule.")] = 0.95,
    min_recall: Annotated[float, typer.Option(help="Target recall per rule.")] = 0.95,
    max_false_per_100k: Annotated[float, typer.Option(help="Target false alerts per 100k benign events.")] = 1.0,
    samples: Annotated[Path | None, typer.Option("--samples", help="Instead: the real third-party logs of this "
                                                 "datasets folder (../shared/datasets): what the pack raises on "
                                                 "each, against what it must raise.", show_default=False)] = None,
) -> None:
    """Measure every rule on labelled demo traffic: TP, FP, FN, precision, recall, false alerts per 100k.
    With --samples: the alerts per rule on each real log of a datasets folder, against the reviewed
    expectations (access_audit.detect.evaluate.REAL_SAMPLES)."""
    from access_audit.detect.evaluate import evaluate_demo

    _check_format(fmt)
    if samples is not None:
        _eval_samples(samples, rules, fmt, check)
        return
    try:
        rep = evaluate_demo(days=days, seed=seed, rules=rules)
    except RuleLoadErrors as e:
        raise _fail(str(e)) from None
    ok = not rep.failing(min_precision, min_recall) and rep.false_per_100k < max_false_per_100k
    if fmt == "json":
        sys.stdout.write(orjson.dumps({**rep.to_dict(), "targets_met": ok}).decode() + "\n")
    elif fmt == "csv":
        rows = [{**r.to_dict(), "missed": ";".join(r.missed), "false_on": ";".join(r.false_on)} for r in rep.rules]
        _write_rows(rows, ("rule_id", "alerts", "tp", "fp", "fn", "expected", "precision", "recall", "missed",
                           "false_on"), "csv", "")
    else:
        def pct(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}"

        t = Table(title=f"Detection quality on {days} days of demo traffic (seed {seed})")
        for c in ("rule", "alerts", "TP", "FP", "FN", "precision", "recall", "notes"):
            t.add_column(c, justify="right" if c in ("alerts", "TP", "FP", "FN", "precision", "recall") else "left",
                         no_wrap=c == "rule")
        for r in rep.rules:
            notes = "; ".join([*(f"missed {m}" for m in r.missed), *(f"false on {w}" for w in r.false_on)])
            mark = "" if r.meets(min_precision, min_recall) else "[red]"
            t.add_row(f"{mark}{r.rule_id}", str(r.alerts), str(r.tp), str(r.fp), str(r.fn), pct(r.precision),
                      pct(r.recall), escape(notes))
        out.print(t)
        out.print(f"{rep.benign_events} benign events, {rep.false_alerts} false alerts = "
                  f"{rep.false_per_100k:.2f} per 100k; {rep.scenarios} scenarios; "
                  f"{rep.meta.get('dead_letters', 0)} dead letters; {rep.meta.get('seconds')} s; "
                  + ("[green]targets met[/]" if ok else "[red]targets not met[/]"))
    if check and not ok:
        raise typer.Exit(1)


def _eval_samples(datasets: Path, rules: list[Path] | None, fmt: str, check: bool) -> None:
    from access_audit.detect.evaluate import evaluate_samples

    if not datasets.is_dir():
        raise _fail(f"{datasets} is not a folder (the datasets folder, e.g. ../shared/datasets)")
    try:
        rows = evaluate_samples(datasets, rules=rules)
    except RuleLoadErrors as e:
        raise _fail(str(e)) from None

    def fmt_counts(alerts: dict[str, int], counted: dict[str, int] | None = None) -> str:
        return ", ".join(f"{r} {n}" + (f" ({counted[r]} events)" if counted and r in counted else "")
                         for r, n in sorted(alerts.items())) or "-"

    if fmt in ("json", "csv"):
        _write_rows([{**r.to_dict(), "alerts": fmt_counts(r.alerts, r.counted), "expected": fmt_counts(r.expected)}
                     if fmt == "csv" else r.to_dict() for r in rows],
                    ("file", "events", "dead_letters", "alerts", "expected", "ok", "why"), fmt, "")
    else:
        t = Table(title=f"The pack on the real logs of {datasets}")
        for c in ("file", "events", "dead letters", "alerts raised", "expected", "ok"):
            t.add_column(c, justify="right" if c in ("events", "dead letters") else "left")
        for r in rows:
            t.add_row(escape(r.file), str(r.events), str(r.dead_letters), escape(fmt_counts(r.alerts, r.counted)),
                      escape(fmt_counts(r.expected, r.expected_events)),
                      "[yellow]missing[/]" if r.missing else ("[green]ok[/]" if r.ok else "[red]differs[/]"))
        out.print(t)
        bad = [r for r in rows if not r.ok]
        out.print(f"{len(rows) - len(bad)} of {len(rows)} samples as expected")
    if check and any(not r.ok for r in rows):
        raise typer.Exit(1)


@detectors_app.command("list")
def detectors_list(rules: Rules = None, fmt: Fmt = "table") -> None:
    """The loaded rules with kind, severity and log types."""
    from access_audit.detect.loader import load_rules

    _check_format(fmt)
    rs = load_rules(rules or [], include_default=True)
    rows: list[dict[str, Any]] = [{"id": r.id, "kind": r.kind, "severity": r.severity.value,
                                   "log_types": list(r.log_types), "mitre": list(r.mitre), "title": r.title,
                                   "source": r.source} for r in rs.rules]
    if fmt == "json":
        for row in rows:
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
        return
    if fmt == "csv":
        _write_rows([{**r, "log_types": ";".join(r["log_types"]), "mitre": ";".join(r["mitre"])} for r in rows],
                    ("id", "kind", "severity", "log_types", "mitre", "title", "source"), "csv", "")
        return
    t = Table()
    for c in ("id", "kind", "severity", "log_types", "title"):
        t.add_column(c)
    for rule in rs.rules:
        t.add_row(rule.id, rule.kind, rule.severity.value, ",".join(rule.log_types), escape(rule.title))
    out.print(t)


DEBUG_HINT = "run again with --debug for the traceback (and please report it)"


# --- kibana -------------------------------------------------------------------------------------

KibanaPrefix = Annotated[str | None, typer.Option("--prefix", help="Index prefix the data views read (default: "
                                                  "ACCESS_AUDIT_ELASTICSEARCH_INDEX_PREFIX, access-audit).",
                                                  show_default=False)]


@kibana_app.command("load")
def kibana_load(
    url: Annotated[str, typer.Option("--url", help="Kibana's base URL.")] = "http://127.0.0.1:5601",
    prefix: KibanaPrefix = None,
    space: Annotated[str | None, typer.Option("--space", help="Kibana space (default: the default space).")] = None,
    username: Annotated[str | None, typer.Option("--username", help="Kibana user (default: "
                                                 "ACCESS_AUDIT_ELASTICSEARCH_USERNAME).", show_default=False)] = None,
    password: Annotated[str | None, typer.Option("--password", envvar="ACCESS_AUDIT_KIBANA_PASSWORD",
                                                 help="Password (env ACCESS_AUDIT_KIBANA_PASSWORD; default: "
                                                 "ACCESS_AUDIT_ELASTICSEARCH_PASSWORD).", show_default=False)] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for Kibana's answer.")] = 30.0,
    data_dir: DataDir = None,
) -> None:
    """Import the saved objects into Kibana (POST /api/saved_objects/_import?overwrite=true).

    Data views for <prefix>-events-* (time: @timestamp) and <prefix>-alerts (time: last_seen),
    saved searches (failed logins, access to personal data, alerts by rule), Lens panels and the
    "Access audit" dashboard. Safe to run again: the objects keep their ids and are overwritten."""
    from access_audit.kibana import KibanaError, import_saved_objects, saved_objects

    settings = _settings(data_dir)
    if username is None and settings.elasticsearch_username:
        username = settings.elasticsearch_username
        if password is None and settings.elasticsearch_password is not None:
            password = settings.elasticsearch_password.get_secret_value()
    objects = saved_objects(prefix or settings.elasticsearch_index_prefix)
    try:
        n = import_saved_objects(url, objects, username=username, password=password, space=space, timeout=timeout)
    except KibanaError as e:
        raise _fail(str(e), 1) from None
    out.print(f"kibana {url.rstrip('/')}: imported {n} saved objects (dashboard \"Access audit\", data views "
              f"{', '.join(o['attributes']['title'] for o in objects if o['type'] == 'index-pattern')})")


@kibana_app.command("export")
def kibana_export(prefix: KibanaPrefix = None, data_dir: DataDir = None) -> None:
    """Print the saved objects as NDJSON for the prefix, to import in Kibana's UI (Stack Management >
    Saved objects > Import) or with curl."""
    from access_audit.kibana import saved_objects, to_ndjson

    sys.stdout.buffer.write(to_ndjson(saved_objects(prefix or _settings(data_dir).elasticsearch_index_prefix)))
    sys.stdout.flush()


def _setting_errors(e: Any) -> list[str]:
    """One line per invalid setting of a pydantic ValidationError, named as the user writes it."""
    lines = []
    for x in e.errors()[:10]:
        key = ".".join(str(p) for p in x.get("loc", ())) or "?"
        got = x.get("input")
        shown = "" if isinstance(got, dict) else f" (got {str(got)[:80]!r})"
        lines.append(f"invalid setting {key.upper()} (ACCESS_AUDIT_{key.upper().split('.')[0]} or the config "
                     f"file): {x.get('msg')}{shown}")
    return lines


def _click_exceptions(kind: str) -> Any:
    """``kind`` (Exit, ClickException, Abort) of click and of the copy of click that newer typers
    carry. Only the copies already imported: ``main`` asks in its ``except`` clauses, which run
    once something has been raised, and a click nobody imported raised nothing (importing click
    to find out was ~5 ms of every start)."""
    found: list[type[BaseException]] = []
    for name in ("click.exceptions", "typer._click.exceptions", "typer.exceptions"):
        cls = getattr(sys.modules.get(name), kind, None)
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
            found.append(cls)
    return tuple(found)


def main(argv: list[str] | None = None) -> None:
    """The console script. Never shows a traceback unless ``--debug`` (anywhere) or
    ``ACCESS_AUDIT_DEBUG=1``: errors are one line and a non-zero exit."""
    import logging
    import os

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("ACCESS_AUDIT_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s: %(message)s")
    if not debug:  # the Kafka client logs every failed connection attempt; we say it once, readably
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    code = 0
    kept = _only_the_named_command(args)
    try:
        rv = app(args=args, prog_name="access-audit", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except _click_exceptions("Exit") as e:  # evaluated once something is raised: see _click_exceptions
        code = e.exit_code
    except _click_exceptions("ClickException") as e:
        from typer import rich_utils

        rich_utils.rich_format_error(e)
        code = e.exit_code
    except (*_click_exceptions("Abort"), KeyboardInterrupt):
        err.print("aborted")
        code = 130
    except AccessAuditError as e:
        if debug:
            raise
        err.print(f"[red]error:[/] {escape(str(e))}")
        code = 2
    except FileNotFoundError as e:  # a path the user gave (an input, a rule folder, a config file)
        if debug:
            raise
        err.print(f"[red]error:[/] {escape(str(e))}")
        code = 2
    except _validation_error() as e:
        if debug:
            raise
        for line in _setting_errors(e):
            err.print(f"[red]error:[/] {escape(line)}")
        code = 2
    except Exception as e:
        if debug:
            raise
        err.print(f"[red]error:[/] {escape(type(e).__name__)}: {escape(str(e) or 'no detail')}")
        err.print(f"hint: {DEBUG_HINT}")
        code = 1
    finally:
        app.registered_commands[:], app.registered_groups[:] = kept
    sys.exit(code)


def _validation_error() -> type[Exception]:
    from pydantic import ValidationError  # 40 ms of import: only when an error is being matched

    return ValidationError


def _only_the_named_command(args: list[str]) -> tuple[list[Any], list[Any]]:
    """Let typer build only the command the arguments name. It turns every command's signature
    into click parameters before it parses anything (about 3 ms a command, 51 of them, on every
    start); ``query`` needs its own. Returns the full lists, which ``main`` puts back. Anything
    else (no command, ``--help``, a misspelt name that deserves the suggestions) builds them all."""
    from typer.main import get_command_name

    full = (list(app.registered_commands), list(app.registered_groups))
    name = next((a for a in args if not a.startswith("-")), None)
    if name is None:
        return full
    cmds = [c for c in full[0] if (c.name or get_command_name(c.callback.__name__)) == name]
    groups = [g for g in full[1] if g.name == name]
    if cmds or groups:
        app.registered_commands[:], app.registered_groups[:] = cmds, groups
    return full


if __name__ == "__main__":
    main()
