"""Alerts to the terminal and to a JSON Lines file: the embedded mode's notifiers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import orjson
from rich.console import Console
from rich.markup import escape

from access_audit.core.alerts import Alert, Severity

_STYLE = {Severity.info: "dim", Severity.low: "cyan", Severity.medium: "yellow", Severity.high: "bold red",
          Severity.critical: "bold white on red"}


class ConsoleNotifier:
    """Prints each new alert as one line; counter updates are not printed (the store has them)."""

    def __init__(self, console: Console | None = None, *, min_severity: Severity = Severity.low) -> None:
        self.console = console or Console(stderr=False, highlight=False)
        self.min_rank = min_severity.rank

    def emit(self, alert: Alert, new: bool) -> None:
        if not new or alert.severity.rank < self.min_rank:
            return
        sev = alert.severity
        who = " ".join(x for x in (f"user={alert.user}" if alert.user else "",
                                   f"src={alert.source_ip}" if alert.source_ip else "",
                                   f"host={alert.host}" if alert.host else "") if x)
        self.console.print(
            f"[{_STYLE[sev]}]{sev.value.upper():8}[/] {alert.last_seen:%Y-%m-%d %H:%M:%S} "
            f"[bold]{escape(alert.rule_id)}[/] {escape(alert.title)} [dim]{escape(who)}[/]")

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class JsonlAlertSink:
    """Appends each new alert to ``alerts.jsonl``, one JSON object per line, fsync'd on flush.

    Counter updates of an open alert are not appended (one alert per line); the store holds the
    current counter and last_seen.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] = open(path, "ab")  # noqa: SIM115 - kept open for the run

    def emit(self, alert: Alert, new: bool) -> None:
        if new:
            self._fh.write(orjson.dumps(alert.to_doc()) + b"\n")

    def flush(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self.flush()
        self._fh.close()
