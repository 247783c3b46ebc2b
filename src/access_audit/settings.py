"""One frozen settings model. Environment variables use the prefix ``ACCESS_AUDIT_``.

``ACCESS_AUDIT_DATA_DIR`` (default ``./.access-audit``) holds the embedded store
(``events.db``) and ``alerts.jsonl``. ``ACCESS_AUDIT_CONFIG`` names a YAML config file with the
same keys without the prefix (``slack_channel: "#sec"``); the environment wins over the file,
and secrets are better kept in ``*_file`` settings than in either.

A config file that is missing or not valid YAML, or that is not a mapping, raises ConfigError.
Keys that name no setting (``SLACK_TOKN``), in the file or as ``ACCESS_AUDIT_*`` variables, are
warned about once per process with the nearest valid name; they would otherwise be ignored.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic._internal._utils import deep_update

from access_audit.core.errors import ConfigError

CONFIG_ENV = "ACCESS_AUDIT_CONFIG"
ENV_PREFIX = "ACCESS_AUDIT_"
# Variables with the prefix that are not settings: read by the CLI or the tests, not the model.
NOT_SETTINGS = {"CONFIG", "DEBUG", "DATASETS", "WHEELHOUSE"}
log = logging.getLogger(__name__)
_warned: set[str] = set()


def _read_config(path: str) -> dict[str, Any]:
    import yaml  # only with a config file: ~10 ms of every command otherwise

    if not Path(path).is_file():
        raise ConfigError(f"{CONFIG_ENV}={path}: no such config file")
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{CONFIG_ENV}={path}: not valid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{CONFIG_ENV}={path}: cannot read it: {e}") from None
    except RecursionError:  # pathologically deep nesting ("[[[[..."): not a config file
        raise ConfigError(f"{CONFIG_ENV}={path}: not valid YAML: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{CONFIG_ENV}={path}: expected a mapping of settings (KEY: value), "
                          f"got {type(data).__name__}")
    return data


def unknown_keys(names: list[str], known: set[str]) -> list[tuple[str, str | None]]:
    """The names that are no setting, each with the nearest known one (or None)."""
    out = []
    for n in names:
        if n.lower() not in known:
            near = difflib.get_close_matches(n.lower(), sorted(known), n=1, cutoff=0.75)
            out.append((n, near[0] if near else None))
    return out


def _warn_unknown(where: str, names: list[str], known: set[str], *, prefix: str = "") -> None:
    for name, near in unknown_keys(names, known):
        key = f"{where}:{name}"
        if key in _warned:
            continue
        _warned.add(key)
        hint = f"; did you mean {prefix}{near.upper()}?" if near else ""
        log.warning("%s: %s%s is not a setting and is ignored%s", where, prefix, name, hint)


class SettingsError(ValueError):
    """An ``ACCESS_AUDIT_*`` variable of a list or mapping setting that is not JSON."""


def _is_complex(annotation: Any) -> bool:
    """A list or mapping setting: its environment variable holds JSON."""
    return get_origin(annotation) in (list, dict)


def _from_environment(settings_cls: type[BaseModel]) -> dict[str, Any]:
    """The settings given as ``ACCESS_AUDIT_<NAME>`` variables, names in any case (the last of
    two spellings of one name wins); lists and mappings are JSON, anything else the plain string
    that validation then reads (``true``, ``5``, a path)."""
    env = {k.lower(): v for k, v in os.environ.items()}
    data: dict[str, Any] = {}
    for name, field in settings_cls.model_fields.items():
        value = env.get((ENV_PREFIX + name).lower())
        if value is None:
            continue
        if _is_complex(field.annotation):
            try:
                value = json.loads(value)
            except ValueError as e:
                raise SettingsError(f'error parsing value for field "{name}" from source "EnvSettingsSource"') from e
        if value is not None:  # JSON null: as if unset
            data[name] = value
    return data


class Settings(BaseModel):
    """The settings: keyword arguments, then ``ACCESS_AUDIT_*`` variables, then the config file
    (``ACCESS_AUDIT_CONFIG``), then the defaults; mappings given in more than one place are merged
    key by key with the same precedence. This is the precedence and the parsing pydantic-settings
    gave the same model (tests/test_settings_sources.py holds the two side by side); the loader is
    our own because pydantic-settings costs ~50 ms of import (asyncio, argparse, dotenv, its
    cloud providers) on every command, ``access-audit query`` included."""

    model_config = ConfigDict(frozen=True, extra="ignore", arbitrary_types_allowed=True, validate_default=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**_build_values(type(self), values))

    data_dir: Path = Field(default=Path(".access-audit"))
    store: Literal["sqlite", "elasticsearch"] = "sqlite"
    bus: Literal["memory", "kafka"] = "memory"
    rules: list[Path] = Field(default_factory=list)
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    # Tamper evidence (store/chain.py): chain every stored record; the key and the anchor belong
    # outside the store (a secret mount; append-only storage). Defaults: in the data directory.
    chain: bool = True
    chain_key_file: Path | None = None
    chain_anchor_file: Path | None = None
    # Allowed lateness (issue 11): how late, in event time behind the newest event of its
    # partition, an event may arrive and still give the alerts it would have given in order.
    # CloudTrail delivers up to ~15 minutes late; a syslog shipper's buffer sets its own.
    allowed_lateness_minutes: float = Field(default=15.0, ge=0, le=7 * 24 * 60)
    allowed_lateness_by_log_type: dict[str, float] = Field(default_factory=dict)  # minutes, e.g. {syslog: 60}

    def lateness_for(self, log_types: list[str] | tuple[str, ...] | None) -> timedelta:
        """The allowed lateness of a rule over these log types (the largest; the default for none)."""
        by = self.allowed_lateness_by_log_type
        mins = [by.get(t, self.allowed_lateness_minutes) for t in (log_types or ())]
        return timedelta(minutes=max(mins) if mins else self.allowed_lateness_minutes)

    # Log sources that go silent (access_audit.sources): checked by the scheduler and `sources`.
    source_quiet_minutes: float = Field(default=120.0, gt=0, le=30 * 24 * 60)  # no event for this long: silent
    source_baseline_hours: float = Field(default=24.0, gt=0, le=90 * 24)  # the period a source's rate is learnt in
    source_min_events: int = Field(default=20, ge=1)  # fewer in the baseline: too sparse to judge
    source_drop_ratio: float = Field(default=0.1, ge=0, le=1)  # below this share of the expected: dropped
    source_check_minutes: float = Field(default=5.0, gt=0, le=24 * 60)  # how often the scheduler checks

    # Enrichment: offline GeoIP, the identity directory, the resource catalogue
    geoip: bool = True
    geoip_db: Path | None = None  # a MaxMind-format .mmdb; default: the GeoLite2 copy shipped with the package
    identity_file: Path | None = None  # YAML, JSON or CSV (see access_audit.enrich.directory)
    resources_file: Path | None = None  # YAML or JSON (see access_audit.enrich.catalogue)

    # Kafka (bus=kafka). The client: confluent-kafka (librdkafka, a wheel with a native library; the
    # default, as docs/benchmarks.md measures it consuming ~100x faster) or kafka-python (pure Python)
    kafka_client: Literal["confluent", "kafka-python"] = "confluent"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topics: list[str] = Field(default_factory=lambda: ["access-audit.raw"])
    kafka_topic_log_types: dict[str, str] = Field(default_factory=dict)  # topic -> log type
    kafka_group_id: str = "access-audit-worker"
    kafka_client_id: str = "access-audit"
    kafka_alerts_topic: str = "access-audit.alerts"
    kafka_dead_letter_topic: str = "access-audit.dead-letters"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_partition_key: str = "source.ip"  # field that keys raw messages (ship); rules re-key in stage 2
    # Scale-out (access_audit.handover, docs/design/topology.md): "rekey" hands events over to one
    # topic per rule grouping, so N workers raise the alerts of one; "single" runs every rule in
    # the consuming worker (one stage: correct with one worker only; the benchmark's reference).
    kafka_topology: Literal["rekey", "single"] = "rekey"
    kafka_handover_partitions: int = Field(default=6, ge=1, le=10_000)  # for topics it creates
    kafka_raw_partitions: int = Field(default=6, ge=1, le=10_000)  # raw/alerts/dead letters (`topics --create`)
    kafka_handover_replication: int = Field(default=1, ge=1, le=10)
    handover_seen_ids: int = Field(default=200_000, ge=1000)  # ids per partition stage 2 remembers (replays)

    # Slack (with a token, `run` and `demo` deliver alerts to Slack instead of the console)
    slack_token: SecretStr | None = None
    slack_token_file: Path | None = None  # a secrets file holding the token, instead of slack_token
    slack_signing_secret: SecretStr | None = None
    slack_signing_secret_file: Path | None = None
    slack_base_url: str = "https://slack.com/api/"
    slack_channel: str = "#security-alerts"  # the default channel
    # routes, first match wins: [{"severity": ["critical"], "channel": "#sec-critical"},
    # {"rule": "aws_*", "channel": "#cloud-sec"}, {"tag": "okta", "channel": "#iam"}, {"team": "x", ...}]
    slack_routes: list[dict[str, Any]] = Field(default_factory=list)
    slack_dpo_channel: str = "#dpo"
    slack_personal_data: Literal["full", "pseudonymised", "none"] = "full"  # in messages
    slack_min_severity: Literal["info", "low", "medium", "high", "critical"] = "low"
    slack_storm_threshold: int = Field(default=20, ge=1)  # waiting messages per channel before a digest

    # Generic webhook (JSON POST of every alert)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None  # HMAC-SHA256 signature header when set

    # Elasticsearch (store=elasticsearch)
    elasticsearch_url: str = "http://127.0.0.1:9200"
    elasticsearch_username: str | None = None
    elasticsearch_password: SecretStr | None = None
    elasticsearch_api_key: SecretStr | None = None
    elasticsearch_ca_certs: Path | None = None
    elasticsearch_index_prefix: str = "access-audit"
    retention_days: int = Field(default=365, ge=1)  # daily event indices older than this are deleted
    # Retention per data class (access_audit.retention, docs/design/decisions.md §5); legal holds win
    dead_letter_retention_days: int | None = Field(default=None, ge=1)  # default: retention_days
    alert_retention_days: int = Field(default=730, ge=1)
    self_audit_retention_days: int = Field(default=2190, ge=1)  # never shorter than retention_days
    case_retention_days: int = Field(default=1825, ge=1)  # closed breach cases, from their closing day
    legal_hold_days: int = Field(default=365, ge=0)  # a case's evidence is held until closed + this

    # Breach response (access_audit.breach): clocks, reminders, the contact point in drafts
    org_timezone: str = "Europe/Amsterdam"  # deadlines are shown in this zone
    breach_regimes: list[str] = Field(default_factory=lambda: ["gdpr"])  # gdpr uk_gdpr processor nis2 dora hipaa
    processor_notice_hours: int = Field(default=24, ge=1)  # a processor's notice to its controller
    reminder_offsets_hours: list[float] = Field(default_factory=lambda: [48.0, 24.0, 6.0, 1.0])  # before each deadline
    organisation_name: str | None = None
    dpo_name: str | None = None
    dpo_email: str | None = None
    dpo_phone: str | None = None

    # HTTP API and DPO console (`access-audit serve`)
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_token_ttl_days: int = Field(default=90, ge=1, le=3650)  # tokens always expire
    api_pseudonym_key: SecretStr | None = None  # HMAC key of pseudonyms; default: generated in <data_dir>
    # issue 12: the edges of the API (see access_audit.api.edges and docs/privacy.md)
    api_trusted_proxies: list[str] = Field(default_factory=list)  # TLS proxies whose X-Forwarded-* is believed
    api_max_body_bytes: int = Field(default=1 << 20, ge=1024)
    api_login_max_failures: int = Field(default=5, ge=1)  # per client address and per token, per window
    api_login_window_s: int = Field(default=900, ge=1)
    api_allowed_origins: list[str] = Field(default_factory=list)  # besides the server's own origin
    api_dpo_bootstrap: bool = False  # the CLI may mint DPO tokens although one is active already
    slack_user_roles: dict[str, str] = Field(default_factory=dict)  # Slack user id -> role, for the buttons

    @property
    def chain_key_path(self) -> Path:
        return self.chain_key_file or self.data_dir / "chain.key"

    @property
    def chain_anchor_path(self) -> Path:
        return self.chain_anchor_file or self.data_dir / "chain-anchor.jsonl"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "events.db"

    @property
    def alerts_path(self) -> Path:
        return self.data_dir / "alerts.jsonl"

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.db"

    @property
    def breach_path(self) -> Path:
        return self.data_dir / "breach.db"


def _build_values(settings_cls: type[BaseModel], init: dict[str, Any]) -> dict[str, Any]:
    known = set(settings_cls.model_fields)
    env_names = [k[len(ENV_PREFIX):] for k in os.environ
                 if k.startswith(ENV_PREFIX) and k[len(ENV_PREFIX):] not in NOT_SETTINGS]
    _warn_unknown("environment", env_names, known, prefix=ENV_PREFIX)
    path = os.environ.get(CONFIG_ENV)
    file: dict[str, Any] = {}
    if path:
        raw = _read_config(path)
        _warn_unknown(path, [str(k) for k in raw], known)
        # names in any case, as in the environment (and in pydantic-settings >= 2.16): the warning
        # above takes SLACK_BASE_URL as known, so it must not be dropped here either
        file = {str(k).lower(): v for k, v in raw.items()}
    state: dict[str, Any] = {}
    for source in (init, _from_environment(settings_cls), file):  # the first wins
        state = deep_update(source, state)
    return state
