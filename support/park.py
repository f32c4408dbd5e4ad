"""The test park and square zones: where the tests, benchmarks, screenshots and demo run
their mobs (lon/lat, GeoJSON)."""

from __future__ import annotations

import math

# A real park: Volkspark am Weinberg, Berlin-Mitte (approximate outline, lon/lat).
PARK = {
    "type": "Polygon",
    "coordinates": [
        [
            [13.39797, 52.53300],
            [13.40105, 52.53338],
            [13.40262, 52.53225],
            [13.40188, 52.53083],
            [13.39905, 52.53049],
            [13.39742, 52.53148],
            [13.39797, 52.53300],
        ]
    ],
}
# A point inside PARK (a browser's geolocation).
PARK_CENTER = {"latitude": 52.5320, "longitude": 13.4000}

BERLIN = (13.4050, 52.5200)  # lon, lat: the centre of the benchmarks' square zones
M_PER_DEG_LAT = 111_320.0


def square_box(
    side_m: float, inset_m: float = 0.0, centre: tuple[float, float] = BERLIN
) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a square of ``side_m`` around ``centre``, shrunk by
    ``inset_m`` on every side."""
    half = side_m / 2 - inset_m
    dlat = half / M_PER_DEG_LAT
    dlon = half / (M_PER_DEG_LAT * math.cos(math.radians(centre[1])))
    return (centre[0] - dlon, centre[1] - dlat, centre[0] + dlon, centre[1] + dlat)


def box_polygon(box: tuple[float, float, float, float]) -> dict:
    """A GeoJSON polygon of a (west, south, east, north) box."""
    w, s, e, n = box
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
