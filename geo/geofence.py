"""Geofence with accuracy (inside / outside / uncertain) and plausibility of location fixes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import shapely
from shapely.ops import nearest_points

from geo.distance import bearing_deg, distance_m
from geo.projection import LocalProjection

__all__ = ["ZoneFix", "zone_status", "fix_problem"]


@dataclass(frozen=True)
class ZoneFix:
    """Where a fix lies relative to a zone.

    ``state`` is ``inside``, ``outside`` or ``uncertain`` (the accuracy circle crosses the
    boundary); ``distance_m`` is 0 inside, else metres to the zone; ``bearing_deg`` points
    from the fix to the nearest point of the zone (None inside).
    """

    state: str
    distance_m: float
    bearing_deg: float | None


def zone_status(zone, lon: float, lat: float, accuracy_m: float) -> ZoneFix:
    """Judge a fix with its accuracy radius (metres) against a lon/lat zone.

    Inside only when the whole accuracy circle is inside; outside only when the whole circle
    is outside; otherwise uncertain.

    >>> from shapely.geometry import box
    >>> park = box(13.0, 52.0, 13.01, 52.01)       # about 680 m x 1110 m
    >>> zone_status(park, 13.005, 52.005, 20).state
    'inside'
    >>> zone_status(park, 13.005, 52.005, 1000).state
    'uncertain'
    >>> fix = zone_status(park, 13.005, 51.99, 30)  # about 1.1 km south
    >>> fix.state, round(fix.distance_m), round(fix.bearing_deg)
    ('outside', 1113, 0)
    """
    proj = LocalProjection(lon, lat)
    local_zone = proj.forward(zone)
    here = shapely.Point(0.0, 0.0)
    inside = local_zone.covers(here)
    to_boundary_m = local_zone.boundary.distance(here)
    if inside:
        state = "inside" if to_boundary_m >= accuracy_m else "uncertain"
        return ZoneFix(state, 0.0, None)
    nearest = nearest_points(local_zone, here)[0]
    n_lon, n_lat = proj.inverse_xy(nearest.x, nearest.y)
    d = distance_m(lon, lat, float(n_lon), float(n_lat))
    state = "outside" if d > accuracy_m else "uncertain"
    return ZoneFix(state, d, bearing_deg(lon, lat, float(n_lon), float(n_lat)))


def fix_problem(
    accuracy_m: float,
    max_accuracy_m: float,
    previous: tuple[float, float, float] | None,
    current: tuple[float, float, float],
    max_speed_mps: float,
) -> str | None:
    """Why a fix must not count (``poor_accuracy``, ``implausible_speed``), or None.

    ``previous`` and ``current`` are ``(lon, lat, time_s)``. A jump is judged on the straight
    distance between the two fixes, without accuracy slack; fixes less than a second apart
    (or out of order) are judged as one second apart.

    >>> fix_problem(800, 100, None, (13.0, 52.0, 0.0), 15)
    'poor_accuracy'
    >>> fix_problem(10, 100, (13.0, 52.0, 0.0), (13.0, 52.045, 10.0), 15)  # 5 km in 10 s
    'implausible_speed'
    >>> fix_problem(10, 100, (13.0, 52.0, 0.0), (13.0, 52.0001, 10.0), 15) is None
    True
    """
    if not math.isfinite(accuracy_m) or accuracy_m > max_accuracy_m:
        return "poor_accuracy"
    if previous is not None:
        p_lon, p_lat, p_t = previous
        c_lon, c_lat, c_t = current
        dt = max(c_t - p_t, 1.0)
        if distance_m(p_lon, p_lat, c_lon, c_lat) / dt > max_speed_mps:
            return "implausible_speed"
    return None
