"""geo.projection: the affine local projection between lon/lat and metres."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Point, Polygon, box

from geo import LocalProjection

PROPERTY = settings(max_examples=60, deadline=None)
centres = st.tuples(st.floats(-179, 179), st.floats(-85, 85))


@pytest.mark.parametrize("lat0", [0.0, 30.0, 52.5, -66.0, 80.0])
def test_scale_factors_match_geodesic_distances(lat0):
    proj = LocalProjection(10.0, lat0)
    step = 0.001
    north_m = geodesic((lat0 - step / 2, 10.0), (lat0 + step / 2, 10.0)).meters
    east_m = geodesic((lat0, 10.0), (lat0, 10.0 + step)).meters
    assert proj.k_lat * step == pytest.approx(north_m, rel=1e-6)
    assert proj.k_lon * step == pytest.approx(east_m, rel=1e-6)


def test_forward_of_the_centre_is_the_origin():
    proj = LocalProjection(13.4, 52.5)
    x, y = proj.forward_xy(13.4, 52.5)
    assert (float(x), float(y)) == (0.0, 0.0)


def test_axes_point_east_and_north():
    proj = LocalProjection(13.4, 52.5)
    x, y = proj.forward_xy(13.41, 52.49)
    assert x > 0 and y < 0


@PROPERTY
@given(centres, st.lists(st.tuples(st.floats(-5000, 5000), st.floats(-5000, 5000)), min_size=1))
def test_inverse_undoes_forward(centre, points):
    proj = LocalProjection(*centre)
    xy = np.array(points)
    lon, lat = proj.inverse_xy(xy[:, 0], xy[:, 1])
    x, y = proj.forward_xy(lon, lat)
    np.testing.assert_allclose(np.column_stack([x, y]), xy, atol=1e-6)


def test_arrays_and_scalars_are_accepted():
    proj = LocalProjection(13.4, 52.5)
    x, y = proj.forward_xy(np.array([13.4, 13.5]), np.array([52.5, 52.6]))
    assert x.shape == y.shape == (2,)
    lon, lat = proj.inverse_xy(0.0, 0.0)
    assert float(lon) == 13.4 and float(lat) == 52.5


def test_geometries_round_trip_with_holes_and_parts():
    zone = MultiPolygon(
        [box(13.35, 52.51, 13.354, 52.512).difference(box(13.351, 52.5105, 13.352, 52.5115)),
         box(13.36, 52.51, 13.362, 52.511)]
    )  # fmt: skip
    proj = LocalProjection.for_geometry(zone)
    projected = proj.forward(zone)
    assert projected.geom_type == "MultiPolygon"
    assert projected.area == pytest.approx((271.6 * 222.6 - 67.9 * 111.3) + 135.8 * 111.3, rel=0.01)
    back = proj.inverse(projected)
    assert shapely.equals_exact(back, zone, tolerance=1e-12)


def test_geometry_arrays_are_transformed():
    proj = LocalProjection(0.0, 0.0)
    out = proj.forward(np.array([Point(0, 0), Point(1, 0)]))
    assert out[1].x == pytest.approx(111_319.49, abs=0.01)


def test_for_geometry_uses_the_bounds_centre():
    proj = LocalProjection.for_geometry(Polygon([(13.0, 52.0), (14.0, 52.0), (13.2, 53.0)]))
    assert (proj.lon0, proj.lat0) == (13.5, 52.5)
    with pytest.raises(ValueError):
        LocalProjection.for_geometry(Polygon())


@PROPERTY
@given(
    centres,
    st.lists(st.tuples(st.floats(-3000, 3000), st.floats(-3000, 3000)), min_size=20, max_size=60),
)
def test_affine_projection_preserves_inside(centre, points):
    # A lon/lat polygon and points: inside-ness is the same before and after projecting.
    proj = LocalProjection(*centre)
    angles = np.linspace(0, 2 * np.pi, 7, endpoint=False)
    radii = np.array([2000, 900, 2500, 1200, 2200, 700, 1800])
    shell_xy = np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])
    lon, lat = proj.inverse_xy(shell_xy[:, 0], shell_xy[:, 1])
    zone = Polygon(np.column_stack([lon, lat]))
    xy = np.array(points)
    p_lon, p_lat = proj.inverse_xy(xy[:, 0], xy[:, 1])
    in_lonlat = shapely.contains_xy(zone, p_lon, p_lat)
    px, py = proj.forward_xy(p_lon, p_lat)
    in_metres = shapely.contains_xy(proj.forward(zone), px, py)
    far_from_edge = shapely.distance(proj.forward(zone).exterior, shapely.points(px, py)) > 1e-6
    assert (in_lonlat == in_metres)[far_from_edge].all()


def test_rejects_an_invalid_centre():
    with pytest.raises(ValueError):
        LocalProjection(0.0, 91.0)
    with pytest.raises(ValueError):
        LocalProjection(float("nan"), 0.0)
