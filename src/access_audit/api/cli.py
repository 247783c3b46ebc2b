"""``access-audit serve`` and ``access-audit tokens ...``: run the API and the console, manage tokens.

    access-audit serve --host 0.0.0.0 --port 8000
    access-audit tokens create --role dpo --name "Fenna de Vries" [--ttl-days 30]   # prints the token once
    access-audit tokens list
    access-audit tokens revoke 3f2c9a01b7de

FastAPI and uvicorn are imported only when a command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

tokens_app = typer.Typer(help="API tokens for the HTTP API and the console: create, list, revoke.",
                         no_args_is_help=True)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory (env ACCESS_AUDIT_DATA_DIR).",
                                              show_default=False)]


def _settings(data_dir: Path | None) -> Any:
    from access_audit.settings import Settings

    return Settings(data_dir=data_dir) if data_dir else Settings()


def _tokens(settings: Any) -> Any:
    from access_audit.api.auth import TokenStore

    return TokenStore(Path(settings.data_dir) / "auth.db")


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default ACCESS_AUDIT_API_HOST, "
                                             "127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535,
                                             help="Port (default ACCESS_AUDIT_API_PORT, 8000).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Run the HTTP API (OpenAPI at /openapi.json) and the DPO console (/console) on the configured store."""
    import uvicorn

    from access_audit.api.app import create_app

    settings = _settings(data_dir)
    app = create_app(settings)
    h, p = host or settings.api_host, port or settings.api_port
    err.print(f"access-audit API and console on http://{escape(h)}:{p}/console ({settings.store} store); "
              "sign in with a token from 'access-audit tokens create --role dpo'")
    uvicorn.run(app, host=h, port=p, log_level="info", server_header=False)


@tokens_app.command("create")
def create(
    role: Annotated[str, typer.Option("--role", help="engineer | security_analyst | dpo | auditor | admin")],
    name: Annotated[str | None, typer.Option("--name", help="Whose token (shown in audit trails).")] = None,
    ttl_days: Annotated[float | None, typer.Option("--ttl-days", help="Days until it expires "
                                                   "(default ACCESS_AUDIT_API_TOKEN_TTL_DAYS, 90).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from access_audit.api.auth import parse_role

    settings = _settings(data_dir)
    r = parse_role(role)
    store = _tokens(settings)
    try:
        token, info = store.create(r, name, ttl_days or settings.api_token_ttl_days)
    finally:
        store.close()
    sys.stdout.write(token + "\n")
    err.print(f"token {info.id} for {escape(info.name)} ({info.role.value}), expires {info.expires:%Y-%m-%d %H:%M} "
              "UTC. It is shown only now: keep it in a password manager.")


@tokens_app.command("list")
def list_tokens(fmt: Annotated[str, typer.Option("--format", "-f", help="table | json")] = "table",
                data_dir: DataDir = None) -> None:
    """Every token: id, name, role, created, expires, state (never the token itself)."""
    from datetime import UTC, datetime

    store = _tokens(_settings(data_dir))
    try:
        rows = [t.to_json(datetime.now(UTC)) for t in store.list()]
    finally:
        store.close()
    if fmt == "json":
        for row in rows:
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
        return
    t = Table()
    for c in ("id", "name", "role", "created", "expires", "state"):
        t.add_column(c)
    for row in rows:
        t.add_row(row["id"], escape(row["name"]), row["role"], row["created"][:16], row["expires"][:16], row["state"])
    out.print(t)


@tokens_app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(help="The token's id (see 'tokens list').")],
           data_dir: DataDir = None) -> None:
    """Revoke a token now; its console sessions end too."""
    store = _tokens(_settings(data_dir))
    try:
        ok = store.revoke(token_id)
    finally:
        store.close()
    if not ok:
        err.print(f"[red]error:[/] no token {escape(token_id)!r}")
        raise typer.Exit(2)
    err.print(f"token {escape(token_id)} revoked")
