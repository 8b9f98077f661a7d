"""Geospatial values (v2/v3 §Geospatial Schemas, after GeoJSON RFC 7946 §3.1).

Each DTDL geospatial schema is one GeoJSON geometry: ``{"type": "Point", "coordinates":
[lon, lat]}``. ``point`` and IoT Central's ``geopoint`` also take the legacy IoT Central object
``{"lat": 47.6, "lon": -122.1, "alt": 10}`` that existing devices send.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeGuard

Check = Callable[[object], str | None]


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _position(value: object) -> str | None:
    """RFC 7946 §3.1.1: [longitude, latitude(, altitude)] in decimal degrees."""
    if not isinstance(value, list) or not 2 <= len(value) <= 3 or not all(map(_number, value)):
        return "a position is [longitude, latitude] or [longitude, latitude, altitude]"
    lon, lat = value[0], value[1]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return f"position {value} is outside longitude ±180, latitude ±90"
    return None


def _list_of(check: Check, minimum: int, what: str) -> Check:
    def run(value: object) -> str | None:
        if not isinstance(value, list) or len(value) < minimum:
            return f"{what} needs an array of at least {minimum}"
        return next((m for m in map(check, value) if m), None)

    return run


def _ring(value: object) -> str | None:
    """RFC 7946 §3.1.6: a linear ring has 4+ positions and ends where it starts."""
    message = _list_of(_position, 4, "a linear ring")(value)
    if message is None and isinstance(value, list) and value[0] != value[-1]:
        return "a linear ring must end at its first position"
    return message


_LINE = _list_of(_position, 2, "a LineString")
_POLYGON = _list_of(_ring, 1, "a Polygon")
_GEOMETRIES: dict[str, tuple[str, Check]] = {
    "point": ("Point", _position),
    "geopoint": ("Point", _position),
    "multiPoint": ("MultiPoint", _list_of(_position, 1, "a MultiPoint")),
    "lineString": ("LineString", _LINE),
    "multiLineString": ("MultiLineString", _list_of(_LINE, 1, "a MultiLineString")),
    "polygon": ("Polygon", _POLYGON),
    "multiPolygon": ("MultiPolygon", _list_of(_POLYGON, 1, "a MultiPolygon")),
}


def check_geo(kind: str, value: object) -> str | None:
    """A message if ``value`` is not a valid ``kind`` geometry, else None."""
    geometry, coordinates = _GEOMETRIES[kind]
    if not isinstance(value, Mapping):
        return f"expected a GeoJSON {geometry} object"
    if kind in ("point", "geopoint") and "type" not in value:
        return _legacy_point(value)
    if value.get("type") != geometry:
        return f"expected GeoJSON type {geometry!r}, got {value.get('type')!r}"
    if "coordinates" not in value:
        return f"a GeoJSON {geometry} needs 'coordinates'"
    return coordinates(value["coordinates"])


def _legacy_point(value: Mapping[object, object]) -> str | None:
    lat, lon, alt = value.get("lat"), value.get("lon"), value.get("alt", 0)
    shape = 'expected {"type": "Point", "coordinates": [lon, lat]} or {"lat", "lon", "alt"}'
    if set(value) - {"lat", "lon", "alt"} or not _number(alt):
        return shape
    if not _number(lat) or not _number(lon):
        return shape
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return f"lat {lat} / lon {lon} is outside latitude ±90, longitude ±180"
    return None
