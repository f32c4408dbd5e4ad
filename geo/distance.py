"""Distances (metres) and bearings (degrees) between lon/lat points, and to zones."""

from __future__ import annotations

import math

import numpy as np
import shapely
from geopy.distance import geodesic

from geo.projection import WGS84_A_M, WGS84_F, LocalProjection

__all__ = ["bbox_around", "bearing_deg", "distance_m", "distance_to_zone_m", "haversine_m"]

#: Mean Earth radius (IUGG), metres, for the spherical formulas.
EARTH_RADIUS_M = 6_371_008.8

_E2 = WGS84_F * (2 - WGS84_F)
# Fewest metres per radian of latitude anywhere on WGS84 (the meridional radius at the
# equator): no path of length d can change latitude by more than d / this.
_MIN_MERIDIONAL_M = WGS84_A_M * (1 - _E2)


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance in metres between two lon/lat points on the WGS84 ellipsoid.

    >>> round(distance_m(13.4050, 52.5200, 2.3522, 48.8566) / 1000, 1)  # Berlin-Paris, km
    879.7
    >>> distance_m(0.0, 0.0, 0.0, 0.0)
    0.0
    """
    return float(geodesic((lat1, lon1), (lat2, lon2)).meters)


def haversine_m(lon1, lat1, lon2, lat2):
    """Great-circle distance in metres on a sphere of the mean Earth radius.

    Accepts scalars or numpy arrays (broadcast together); returns a float for scalars and
    an array otherwise. Within 0.6 % of :func:`distance_m` (the ellipsoid is not a sphere).

    >>> round(float(haversine_m(13.4050, 52.5200, 2.3522, 48.8566)) / 1000, 1)
    877.5
    >>> haversine_m([0.0, 0.0], [0.0, 0.0], [0.0, 1.0], [1.0, 0.0]).round(0)
    array([111195., 111195.])
    """
    lam1, phi1, lam2, phi2 = (
        np.radians(np.asarray(v, dtype=float)) for v in (lon1, lat1, lon2, lat2)
    )
    h = (
        np.sin((phi2 - phi1) / 2.0) ** 2
        + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2.0) ** 2
    )
    d = 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return float(d) if d.ndim == 0 else d


def bearing_deg(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees in [0, 360).

    0 is north, 90 east, 180 south, 270 west; 0 for identical points.

    >>> bearing_deg(13.4, 52.5, 13.5, 52.5).__round__(1)
    90.0
    >>> bearing_deg(13.4, 52.5, 13.4, 52.6), bearing_deg(13.4, 52.5, 13.4, 52.4)
    (0.0, 180.0)
    >>> bearing_deg(0.0, 0.0, -1.0, 0.0)
    270.0
    """
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dlam = math.radians(lon2 - lon1)
    y = math.sin(dlam) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlam)
    deg = math.degrees(math.atan2(y, x)) % 360.0
    return 0.0 if deg == 360.0 else deg


def distance_to_zone_m(zone: shapely.Geometry, lon: float, lat: float) -> float:
    """Geodesic distance in metres from a lon/lat point to a zone; 0 inside or on its edge.

    The nearest point of the zone is found in a :class:`LocalProjection` centred on the
    point, then the distance to it is measured on the ellipsoid.

    >>> from shapely import box
    >>> zone = box(13.40, 52.50, 13.41, 52.51)
    >>> distance_to_zone_m(zone, 13.405, 52.505), distance_to_zone_m(zone, 13.41, 52.505)
    (0.0, 0.0)
    >>> round(distance_to_zone_m(zone, 13.405, 52.52))  # 0.01 degree north of the edge
    1113
    """
    if shapely.intersects_xy(zone, lon, lat):
        return 0.0
    proj = LocalProjection(lon, lat)
    nearest = shapely.shortest_line(proj.forward(zone), shapely.Point(0.0, 0.0))
    x, y = nearest.coords[0]
    near_lon, near_lat = proj.inverse_xy(x, y)
    return distance_m(lon, lat, float(near_lon), float(near_lat))


def bbox_around(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box ``(min_lon, min_lat, max_lon, max_lat)`` holding every point within
    ``radius_m`` metres (geodesic) of ``(lon, lat)``; for pre-filtering with a spatial index.

    The box is conservative (from the ellipsoid's smallest radii, slightly padded).
    Latitudes are clamped to [-90, 90]; when the circle reaches a pole or crosses the
    antimeridian the full longitude range -180..180 is returned.

    >>> [round(v, 4) for v in bbox_around(13.4, 52.5, 1000.0)]
    [13.3853, 52.491, 13.4147, 52.509]
    >>> bbox_around(179.99, 0.0, 5000.0)[0::2]
    (-180.0, 180.0)
    >>> [round(v, 4) for v in bbox_around(0.0, 89.99, 5000.0)]
    [-180.0, 89.9448, 180.0, 90.0]
    """
    radius_m = float(radius_m)
    if not math.isfinite(radius_m) or radius_m < 0:
        raise ValueError(f"radius_m must be a finite number >= 0, got {radius_m}")
    pad = 1.0 + 1e-6
    dlat = math.degrees(radius_m / _MIN_MERIDIONAL_M) * pad + 1e-9
    min_lat = max(-90.0, lat - dlat)
    max_lat = min(90.0, lat + dlat)
    phi_max = math.radians(max(abs(min_lat), abs(max_lat)))
    if max(abs(min_lat), abs(max_lat)) >= 90.0:
        return (-180.0, min_lat, 180.0, max_lat)
    # Distance from the axis (metres per radian of longitude) shrinks poleward, so its
    # value at the most poleward latitude of the box bounds every path's longitude change.
    axis_m = WGS84_A_M * math.cos(phi_max) / math.sqrt(1.0 - _E2 * math.sin(phi_max) ** 2)
    dlon = math.degrees(radius_m / axis_m) * pad + 1e-9
    if lon - dlon < -180.0 or lon + dlon > 180.0:
        return (-180.0, min_lat, 180.0, max_lat)
    return (lon - dlon, min_lat, lon + dlon, max_lat)
