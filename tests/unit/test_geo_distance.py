"""geo.distance: geodesic and spherical distances, bearings, distance to a zone, search boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geographiclib.geodesic import Geodesic
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from geo import (
    LocalProjection,
    bbox_around,
    bearing_deg,
    distance_m,
    distance_to_zone_m,
    haversine_m,
)

PROPERTY = settings(max_examples=60, deadline=None)
BERLIN = (13.4050, 52.5200)
PARIS = (2.3522, 48.8566)
lons = st.floats(-180, 180)
lats = st.floats(-89.5, 89.5)


def test_berlin_to_paris_geodesic():
    exact = Geodesic.WGS84.Inverse(BERLIN[1], BERLIN[0], PARIS[1], PARIS[0])["s12"]
    assert exact == pytest.approx(879_699, abs=1)  # city centres; 878 km is the sphere's
    assert distance_m(*BERLIN, *PARIS) == pytest.approx(exact, abs=1)  # metre-exact
    assert distance_m(*PARIS, *BERLIN) == pytest.approx(exact, abs=1e-3)


def test_coordinate_order_is_lon_lat():
    # One degree of latitude is ~111 km, one degree of longitude at 60° only ~56 km.
    assert distance_m(0.0, 60.0, 0.0, 61.0) == pytest.approx(111_412, abs=100)
    assert distance_m(0.0, 60.0, 1.0, 60.0) == pytest.approx(55_800, abs=100)


def test_haversine_berlin_paris_close_to_geodesic():
    h = haversine_m(*BERLIN, *PARIS)
    assert isinstance(h, float)
    assert h == pytest.approx(distance_m(*BERLIN, *PARIS), rel=0.005)


@PROPERTY
@given(lons, lats, lons, lats)
def test_haversine_within_0_6_percent_of_geodesic(lon1, lat1, lon2, lat2):
    d = distance_m(lon1, lat1, lon2, lat2)
    h = haversine_m(lon1, lat1, lon2, lat2)
    assert h == pytest.approx(d, rel=0.006, abs=1e-6)


def test_haversine_is_vectorized():
    lon2 = np.array([13.41, 13.40, 2.3522])
    lat2 = np.array([52.52, 52.53, 48.8566])
    out = haversine_m(13.40, 52.52, lon2, lat2)
    assert out.shape == (3,)
    expected = [haversine_m(13.40, 52.52, a, b) for a, b in zip(lon2, lat2, strict=True)]
    np.testing.assert_allclose(out, expected)


def test_bearings_due_north_east_south_west():
    assert bearing_deg(13.4, 52.5, 13.4, 52.6) == 0.0
    assert bearing_deg(13.4, 52.5, 13.4, 52.4) == 180.0
    assert bearing_deg(0.0, 0.0, 1.0, 0.0) == 90.0
    assert bearing_deg(0.0, 0.0, -1.0, 0.0) == 270.0
    # Due east off the equator, a great circle starts slightly north of east.
    assert bearing_deg(13.4, 52.5, 13.401, 52.5) == pytest.approx(90.0, abs=0.001)
    assert bearing_deg(13.4, 52.5, 13.4, 52.5) == 0.0


@PROPERTY
@given(lons, st.floats(-80, 80), st.floats(0, 359.99), st.floats(10, 50_000))
def test_bearing_matches_the_ellipsoid_within_a_fraction_of_a_degree(lon, lat, azimuth, d):
    dest = Geodesic.WGS84.Direct(lat, lon, azimuth, d)
    got = bearing_deg(lon, lat, dest["lon2"], dest["lat2"])
    assert 0.0 <= got < 360.0
    diff = (got - azimuth + 180.0) % 360.0 - 180.0
    assert abs(diff) < 0.2


def test_distance_to_zone_is_zero_inside_and_on_the_boundary():
    zone = box(13.40, 52.50, 13.41, 52.51)
    assert distance_to_zone_m(zone, 13.405, 52.505) == 0.0
    assert distance_to_zone_m(zone, 13.40, 52.505) == 0.0
    assert distance_to_zone_m(zone, 13.41, 52.51) == 0.0


def square_and_projection():
    proj = LocalProjection(13.4, 52.5)
    return proj.inverse(box(-50, -50, 50, 50)), proj


def test_distance_to_zone_500_m_north_of_a_square():
    zone, proj = square_and_projection()
    lon, lat = proj.inverse_xy(0.0, 550.0)
    assert distance_to_zone_m(zone, float(lon), float(lat)) == pytest.approx(500.0, abs=0.5)


def test_distance_to_zone_from_beyond_a_corner():
    zone, proj = square_and_projection()
    lon, lat = proj.inverse_xy(50.0 + 300.0, 50.0 + 400.0)
    assert distance_to_zone_m(zone, float(lon), float(lat)) == pytest.approx(500.0, abs=0.5)


def test_distance_to_zone_from_inside_a_hole():
    zone, proj = square_and_projection()
    with_hole = zone.difference(proj.inverse(box(-20, -20, 20, 20)))
    lon, lat = proj.inverse_xy(0.0, 0.0)
    assert distance_to_zone_m(with_hole, float(lon), float(lat)) == pytest.approx(20.0, abs=0.05)


@PROPERTY
@given(st.floats(-170, 170), st.floats(-75, 75), st.floats(0, 360), st.floats(60, 20_000))
def test_distance_to_zone_matches_the_geodesic_to_the_nearest_edge(lon, lat, azimuth, d):
    # From outside a 100 m square, the distance is at most the distance to its centre
    # and within metres of that distance minus the square's half-diagonal range.
    proj = LocalProjection(lon, lat)
    zone = proj.inverse(box(-50, -50, 50, 50))
    dest = Geodesic.WGS84.Direct(lat, lon, azimuth, d)
    got = distance_to_zone_m(zone, dest["lon2"], dest["lat2"])
    assert d - 50 * math.sqrt(2) - 1 <= got <= d - 50 + 1 + d * 0.002


@PROPERTY
@given(
    st.floats(-180, 180),
    st.floats(-90, 90),
    st.floats(0, 100_000),
    st.lists(st.floats(0, 360), min_size=8, max_size=8),
)
def test_bbox_around_contains_every_point_at_the_radius(lon, lat, radius_m, bearings):
    min_lon, min_lat, max_lon, max_lat = bbox_around(lon, lat, radius_m)
    assert -180 <= min_lon <= lon <= max_lon <= 180
    assert -90 <= min_lat <= lat <= max_lat <= 90
    for b in bearings + [0.0, 90.0, 180.0, 270.0]:
        dest = geodesic(meters=radius_m).destination((lat, lon), b)
        assert min_lat <= dest.latitude <= max_lat
        assert min_lon <= dest.longitude <= max_lon, (b, dest)


def test_bbox_around_is_tight_at_mid_latitudes():
    min_lon, min_lat, max_lon, max_lat = bbox_around(13.4, 52.5, 1000.0)
    height_m = distance_m(13.4, min_lat, 13.4, max_lat)
    width_m = distance_m(min_lon, 52.5, max_lon, 52.5)
    assert 2000 <= height_m <= 2000 * 1.01
    assert 2000 <= width_m <= 2000 * 1.01


def test_bbox_around_poles_and_antimeridian_use_the_full_longitude_range():
    assert bbox_around(179.999, 10.0, 1000.0)[0::2] == (-180.0, 180.0)
    assert bbox_around(-179.999, 10.0, 1000.0)[0::2] == (-180.0, 180.0)
    box_ = bbox_around(0.0, 89.999, 1000.0)
    assert box_[0::2] == (-180.0, 180.0) and box_[3] == 90.0
    assert bbox_around(0.0, -90.0, 10.0)[1] == -90.0


def test_bbox_around_zero_radius_and_bad_radius():
    min_lon, min_lat, max_lon, max_lat = bbox_around(13.4, 52.5, 0.0)
    assert min_lon <= 13.4 <= max_lon and min_lat <= 52.5 <= max_lat
    with pytest.raises(ValueError):
        bbox_around(13.4, 52.5, -1.0)
    with pytest.raises(ValueError):
        bbox_around(13.4, 52.5, float("nan"))
