"""An affine local projection between lon/lat degrees (EPSG:4326) and metres around a point."""

from __future__ import annotations

import math

import numpy as np
import shapely

__all__ = ["LocalProjection"]

#: WGS84 semi-major axis, metres.
WGS84_A_M = 6_378_137.0
#: WGS84 flattening.
WGS84_F = 1 / 298.257223563
_E2 = WGS84_F * (2 - WGS84_F)


class LocalProjection:
    """Equirectangular projection to metres, centred on ``(lon0, lat0)``, on WGS84.

    ``x = (lon - lon0) * k_lon`` and ``y = (lat - lat0) * k_lat``, where ``k_lon`` and
    ``k_lat`` are the metres per degree of longitude and latitude at ``lat0`` (from the
    ellipsoid's prime-vertical and meridional radii of curvature). The map is affine, so
    straight edges stay straight and point-in-polygon answers are preserved exactly; scale
    is exact at ``lat0`` and the east-west scale error grows with the north-south distance
    from it (about 0.2 % at 10 km at Berlin's latitude), fine for zones of a few kilometres.

    ``x`` points east and ``y`` north, both in metres.

    >>> proj = LocalProjection(13.4, 52.5)
    >>> round(proj.k_lat), round(proj.k_lon)
    (111277, 67910)
    >>> x, y = proj.forward_xy(13.41, 52.5)
    >>> round(float(x), 1), float(y)
    (679.1, 0.0)
    >>> [round(float(v), 9) for v in proj.inverse_xy(x, y)]
    [13.41, 52.5]
    >>> from shapely import Point
    >>> proj.forward(Point(13.4, 52.51)).y.__round__(1)
    1112.8
    """

    def __init__(self, lon0: float, lat0: float) -> None:
        lon0 = float(lon0)
        lat0 = float(lat0)
        if not (math.isfinite(lon0) and math.isfinite(lat0)) or abs(lat0) > 90:
            raise ValueError(f"projection centre ({lon0}, {lat0}) is not a valid lon/lat")
        self.lon0 = lon0
        self.lat0 = lat0
        phi = math.radians(lat0)
        w = 1.0 - _E2 * math.sin(phi) ** 2
        meridional_m = WGS84_A_M * (1.0 - _E2) / w**1.5
        prime_vertical_m = WGS84_A_M / math.sqrt(w)
        #: Metres per degree of latitude at lat0.
        self.k_lat = meridional_m * math.pi / 180.0
        #: Metres per degree of longitude at lat0 (never exactly 0, even at a pole).
        self.k_lon = max(prime_vertical_m * math.cos(phi) * math.pi / 180.0, 1e-9)

    def __repr__(self) -> str:
        return f"LocalProjection(lon0={self.lon0!r}, lat0={self.lat0!r})"

    @classmethod
    def for_geometry(cls, geom: shapely.Geometry) -> LocalProjection:
        """A projection centred on the centre of ``geom``'s lon/lat bounds.

        >>> from shapely import box
        >>> LocalProjection.for_geometry(box(13.0, 52.0, 14.0, 53.0))
        LocalProjection(lon0=13.5, lat0=52.5)
        """
        if geom is None or geom.is_empty:
            raise ValueError("cannot centre a projection on an empty geometry")
        min_lon, min_lat, max_lon, max_lat = geom.bounds
        return cls((min_lon + max_lon) / 2.0, (min_lat + max_lat) / 2.0)

    def forward_xy(self, lon, lat):
        """Degrees to metres; scalars or numpy arrays in, numpy values out."""
        x = (np.asarray(lon, dtype=float) - self.lon0) * self.k_lon
        y = (np.asarray(lat, dtype=float) - self.lat0) * self.k_lat
        return x, y

    def inverse_xy(self, x, y):
        """Metres to degrees; scalars or numpy arrays in, numpy values out."""
        lon = np.asarray(x, dtype=float) / self.k_lon + self.lon0
        lat = np.asarray(y, dtype=float) / self.k_lat + self.lat0
        return lon, lat

    def _forward_coords(self, coords: np.ndarray) -> np.ndarray:
        out = np.empty_like(coords)
        out[:, 0] = (coords[:, 0] - self.lon0) * self.k_lon
        out[:, 1] = (coords[:, 1] - self.lat0) * self.k_lat
        return out

    def _inverse_coords(self, coords: np.ndarray) -> np.ndarray:
        out = np.empty_like(coords)
        out[:, 0] = coords[:, 0] / self.k_lon + self.lon0
        out[:, 1] = coords[:, 1] / self.k_lat + self.lat0
        return out

    def forward(self, geom):
        """Project a shapely geometry (or array of geometries) from lon/lat to metres."""
        return shapely.transform(geom, self._forward_coords)

    def inverse(self, geom):
        """Map a shapely geometry (or array of geometries) from metres back to lon/lat."""
        return shapely.transform(geom, self._inverse_coords)
