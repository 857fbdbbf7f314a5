"""Places on the map: distances, the municipality's box, neighbourhood boundaries.

Plain arithmetic on WGS 84 degrees, no GIS library: a municipality is small enough
for the haversine distance and an even-odd point-in-polygon test.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

EARTH_RADIUS_METRES = 6_371_008.8

Ring = tuple[tuple[float, float], ...]  # (longitude, latitude) pairs, as GeoJSON has them
Polygon = tuple[Ring, ...]  # the outer ring, then its holes


@dataclass(frozen=True, slots=True)
class Bounds:
    south: float
    west: float
    north: float
    east: float

    def contains(self, latitude: float, longitude: float) -> bool:
        return self.south <= latitude <= self.north and self.west <= longitude <= self.east


def distance_metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_METRES * math.asin(min(1.0, math.sqrt(a)))


def box_around(latitude: float, longitude: float, metres: float) -> Bounds:
    """A box that holds every point within ``metres`` (to narrow a query before the
    exact distance is computed)."""
    dlat = math.degrees(metres / EARTH_RADIUS_METRES)
    cos = max(math.cos(math.radians(latitude)), 1e-6)
    dlon = min(180.0, dlat / cos)
    return Bounds(latitude - dlat, longitude - dlon, latitude + dlat, longitude + dlon)


def valid_point(latitude: object, longitude: object) -> bool:
    return (
        isinstance(latitude, int | float)
        and isinstance(longitude, int | float)
        and not isinstance(latitude, bool)
        and not isinstance(longitude, bool)
        and math.isfinite(latitude)
        and math.isfinite(longitude)
        and -90 <= latitude <= 90
        and -180 <= longitude <= 180
    )


def _in_ring(ring: Ring, lon: float, lat: float) -> bool:
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def in_polygon(polygon: Polygon, latitude: float, longitude: float) -> bool:
    outer, *holes = polygon
    return _in_ring(outer, longitude, latitude) and not any(
        _in_ring(hole, longitude, latitude) for hole in holes
    )


def neighbourhood_at(
    boundaries: Iterable[tuple[str, Sequence[Polygon]]], latitude: float, longitude: float
) -> str | None:
    """The id of the neighbourhood whose boundary holds the point, or None."""
    for key, polygons in boundaries:
        if any(in_polygon(polygon, latitude, longitude) for polygon in polygons):
            return key
    return None


def _ring(raw: Any) -> Ring:
    if not isinstance(raw, list) or len(raw) < 4:
        raise ValueError("a ring needs at least four positions")
    points = []
    for position in raw:
        if not isinstance(position, list) or len(position) < 2:
            raise ValueError("a position is [longitude, latitude]")
        lon, lat = position[0], position[1]
        if not valid_point(lat, lon):
            raise ValueError(f"{position!r} is not a longitude and latitude")
        points.append((float(lon), float(lat)))
    return tuple(points)


def parse_polygons(data: Any) -> list[tuple[str, tuple[Polygon, ...]]]:
    """(properties.id, polygons) of each Polygon or MultiPolygon feature of a GeoJSON
    FeatureCollection; ValueError says what is wrong."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ValueError('"type" must be "FeatureCollection"')
    features = data.get("features")
    if not isinstance(features, list) or not features:
        raise ValueError('"features" must be a non-empty list')
    found: list[tuple[str, tuple[Polygon, ...]]] = []
    for index, feature in enumerate(features):
        if not isinstance(feature, dict):
            raise ValueError(f"feature {index} is not an object")
        properties = feature.get("properties") or {}
        key = properties.get("id") if isinstance(properties, dict) else None
        if not isinstance(key, str) or not key:
            raise ValueError(f"feature {index} has no properties.id")
        geometry = feature.get("geometry") or {}
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
        polygons: tuple[Polygon, ...]
        if kind == "Polygon" and isinstance(coordinates, list) and coordinates:
            polygons = (tuple(_ring(ring) for ring in coordinates),)
        elif kind == "MultiPolygon" and isinstance(coordinates, list) and coordinates:
            polygons = tuple(
                tuple(_ring(ring) for ring in polygon)
                for polygon in coordinates
                if isinstance(polygon, list) and polygon
            )
        else:
            raise ValueError(f"feature {index} ({key}) is not a Polygon or MultiPolygon")
        found.append((key, polygons))
    return found
