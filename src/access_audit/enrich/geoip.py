"""GeoIP from an offline MaxMind-format database.

The default is the GeoLite2-City database that ships inside the ``maxminddb-geolite2`` package
(data by MaxMind, CC BY-SA 4.0; old but offline and city-level). A newer ``.mmdb`` file can be
configured with ``ACCESS_AUDIT_GEOIP_DB``. Private, loopback, link-local and other reserved
addresses are marked ``internal`` and never looked up.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec

from access_audit.core.events import AccessEvent, Geo, GeoPoint

try:
    import maxminddb
except ImportError as e:  # pragma: no cover
    raise ImportError("GeoIP needs maxminddb: pip install maxminddb maxminddb-geolite2") from e


def _open_default() -> Any:
    try:
        from geolite2 import geolite2
    except ImportError as e:  # pragma: no cover
        raise ImportError("the bundled GeoIP data needs maxminddb-geolite2: pip install maxminddb-geolite2") from e
    return geolite2.reader()


def is_internal(ip: str) -> bool:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return bool(a.is_private or a.is_loopback or a.is_link_local or a.is_reserved or a.is_multicast
                or a.is_unspecified or getattr(a, "is_site_local", False))


class GeoIpEnricher:
    """Fills ``source.geo`` (country, city, coordinates, time zone) for public source addresses."""

    def __init__(self, db_path: Path | None = None, cache_size: int = 65_536) -> None:
        self.reader = maxminddb.open_database(str(db_path)) if db_path else _open_default()
        self.lookup = lru_cache(maxsize=cache_size)(self._lookup)

    def _lookup(self, ip: str) -> Geo | None:
        if is_internal(ip):
            return Geo(internal=True)
        try:
            rec: Any = self.reader.get(ip)
        except ValueError:
            return None
        if not rec:
            return Geo(internal=False)
        loc = rec.get("location") or {}
        country = rec.get("country") or rec.get("registered_country") or {}
        point = GeoPoint(lat=loc["latitude"], lon=loc["longitude"]) if "latitude" in loc else None
        return Geo(country_iso_code=country.get("iso_code"), country_name=(country.get("names") or {}).get("en"),
                   city_name=((rec.get("city") or {}).get("names") or {}).get("en"), location=point,
                   timezone=loc.get("time_zone"), internal=False)

    def enrich(self, ev: AccessEvent) -> None:
        src = ev.source
        if src is None or not src.ip:
            return
        if src.geo is not None and src.geo.country_iso_code:
            return  # the log already said (Okta does); keep the vendor's answer
        geo = self.lookup(src.ip)
        if geo is not None:
            src.geo = msgspec.structs.replace(geo)
