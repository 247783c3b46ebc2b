"""One frozen settings model. Environment variables use the prefix ``ACCESS_AUDIT_``.

``ACCESS_AUDIT_DATA_DIR`` (default ``./.access-audit``) holds the embedded store
(``events.db``) and ``alerts.jsonl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ACCESS_AUDIT_", frozen=True, extra="ignore")

    data_dir: Path = Field(default=Path(".access-audit"))
    store: Literal["sqlite", "elasticsearch"] = "sqlite"
    bus: Literal["memory", "kafka"] = "memory"
    rules: list[Path] = Field(default_factory=list)
    batch_size: int = Field(default=1000, ge=1, le=100_000)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "events.db"

    @property
    def alerts_path(self) -> Path:
        return self.data_dir / "alerts.jsonl"
