"""Opening the configured event store: kept apart from the composition root (``access_audit.app``)
so that commands that only read the store (``query``, ``status``, ``alerts list``...) do not import
the pipeline, the detection engine and the rule loader on their way to the first row."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from access_audit.settings import Settings


def open_store(settings: Settings) -> Any:
    """The configured EventStore. Elasticsearch is set up (templates, indices) before it is returned;
    raises StoreUnavailableError when it cannot be reached."""
    if settings.store == "sqlite":
        from access_audit.store.sqlite import SqliteStore

        return _chained(settings, SqliteStore(settings.sqlite_path))
    if settings.store == "elasticsearch":
        from access_audit.store.elasticsearch import ElasticsearchStore  # the core never imports the driver

        store = ElasticsearchStore.from_settings(settings)
        try:
            store.setup()
            return _chained(settings, store)
        except BaseException:
            store.close()
            raise
    raise NotImplementedError(f"store {settings.store!r} is not known")


def _chained(settings: Settings, store: Any) -> Any:
    """The store behind the tamper-evidence chain (``settings.chain``, on by default)."""
    if not settings.chain:
        return store
    from access_audit.store.chain import ChainedStore

    return ChainedStore.wrap(store, settings.chain_key_path, settings.chain_anchor_path)
