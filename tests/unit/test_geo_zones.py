"""geo.zones: strict GeoJSON zone parsing (one error code per failure), area, geofence."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import shapely
from geographiclib.geodesic import Geodesic
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box

from geo import GeoError, LocalProjection, ZoneLimits, parse_zone, point_in_zone, vertex_count
from geo.zones import _invalid, zone_area_m2

PROPERTY = settings(max_examples=60, deadline=None)

# A park-sized square near Berlin's Tiergarten, about 270 m x 220 m.
PARK = [[13.35, 52.51], [13.354, 52.51], [13.354, 52.512], [13.35, 52.512], [13.35, 52.51]]


def polygon(*rings):
    return {"type": "Polygon", "coordinates": [list(ring) for ring in rings]}


DEFAULT_LIMITS = ZoneLimits()


def rejected(obj, limits=DEFAULT_LIMITS) -> GeoError:
    with pytest.raises(GeoError) as info:
        parse_zone(obj, limits)
    err = info.value
    json.dumps(err.where)  # always JSON-serialisable
    assert err.message and str(err) == err.message
    return err


# ---------------------------------------------------------------- random zones


@st.composite
def star_zones(draw, min_vertices=3, max_vertices=60, convex=False, hole=None):
    """A star-shaped polygon in metres around a random centre, as GeoJSON in lon/lat.

    Returns ``(geojson, projection, vertices_xy, hole_xy)``. Angle gaps stay under 150°,
    so every edge keeps at least 0.25·min(radius) from the centre, where the optional
    hole (radius 0.2·min(radius)) sits.
    """
    n = draw(st.integers(min_vertices, max_vertices))
    lon0 = draw(st.floats(-175, 175))
    lat0 = draw(st.floats(-79.5, 79.5))
    weights = np.array(draw(st.lists(st.floats(1, 10), min_size=n, max_size=n)))
    gaps = 2 * math.pi * weights / weights.sum()
    assume(gaps.max() < math.radians(150))
    angles = draw(st.floats(0, 2 * math.pi)) + np.cumsum(gaps)
    if convex:
        radii = np.full(n, draw(st.floats(20, 2000)))
    else:
        radii = np.array(draw(st.lists(st.floats(20, 2000), min_size=n, max_size=n)))
    xy = np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])
    with_hole = draw(st.booleans()) if hole is None else hole
    hole_xy = None
    if with_hole:
        a = np.radians(np.arange(0, 360, 60)) + draw(st.floats(0, 1))
        hole_xy = 0.2 * radii.min() * np.column_stack([np.cos(a), np.sin(a)])
    proj = LocalProjection(lon0, lat0)
    rings = [xy] + ([hole_xy[::-1]] if hole_xy is not None else [])
    coords = []
    for ring in rings:
        lon, lat = proj.inverse_xy(ring[:, 0], ring[:, 1])
        positions = [[float(x), float(y)] for x, y in zip(lon, lat, strict=True)]
        coords.append(positions + [list(positions[0])])
    return {"type": "Polygon", "coordinates": coords}, proj, xy, hole_xy


LOOSE = ZoneLimits(min_area_m2=1.0)


@PROPERTY
@given(star_zones())
def test_random_star_polygons_are_accepted(zone):
    geojson, proj, xy, hole_xy = zone
    geom = parse_zone(geojson, LOOSE)
    assert geom.geom_type == "Polygon" and geom.is_valid
    assert vertex_count(geom) == len(xy) + (0 if hole_xy is None else len(hole_xy))
    expected = Polygon(xy, [] if hole_xy is None else [hole_xy]).area
    assert zone_area_m2(geom) == pytest.approx(expected, rel=0.01)


@PROPERTY
@given(star_zones(min_vertices=4, max_vertices=30, convex=True, hole=False), st.data())
def test_swapping_two_vertices_makes_a_bow_tie(zone, data):
    geojson, *_ = zone
    ring = geojson["coordinates"][0]
    n = len(ring) - 1
    i = data.draw(st.integers(1, n - 2))
    ring[i], ring[i + 1] = ring[i + 1], ring[i]
    err = rejected(geojson, LOOSE)
    assert err.code == "zone_self_intersects"
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    assert min(lons) <= err.where["lon"] <= max(lons)
    assert min(lats) <= err.where["lat"] <= max(lats)
    # The crossing is that of the two swapped edges, inside their four corners' bounds.
    quad = ring[i - 1 : i + 3]
    assert min(p[0] for p in quad) - 1e-9 <= err.where["lon"] <= max(p[0] for p in quad) + 1e-9
    assert min(p[1] for p in quad) - 1e-9 <= err.where["lat"] <= max(p[1] for p in quad) + 1e-9


@PROPERTY
@given(star_zones(min_vertices=4))
def test_dropping_the_closing_position_is_not_closed(zone):
    geojson, *_ = zone
    geojson["coordinates"][0].pop()
    err = rejected(geojson, LOOSE)
    assert err.code == "ring_not_closed"
    assert err.where["path"] == "coordinates[0]"


@PROPERTY
@given(star_zones(), st.data(), st.floats(1e-9, 1e6, allow_nan=False))
def test_latitude_beyond_the_pole_is_out_of_range(zone, data, excess):
    geojson, *_ = zone
    r = data.draw(st.integers(0, len(geojson["coordinates"]) - 1))
    k = data.draw(st.integers(0, len(geojson["coordinates"][r]) - 1))
    sign = data.draw(st.sampled_from([1, -1]))
    geojson["coordinates"][r][k][1] = sign * (90 + excess)
    err = rejected(geojson, LOOSE)
    assert err.code == "coordinate_out_of_range"
    assert err.where == {"path": f"coordinates[{r}][{k}][1]"}
    assert "latitude" in err.message and "-90..90" in err.message


@PROPERTY
@given(star_zones(), st.data())
def test_a_string_coordinate_is_not_numeric(zone, data):
    geojson, *_ = zone
    ring = geojson["coordinates"][0]
    k = data.draw(st.integers(0, len(ring) - 1))
    axis = data.draw(st.integers(0, 1))
    ring[k][axis] = str(ring[k][axis])
    err = rejected(geojson, LOOSE)
    assert err.code == "coordinate_not_numeric"
    assert err.where == {"path": f"coordinates[0][{k}][{axis}]"}


# ---------------------------------------------------------------- accepted zones


def test_park_polygon_is_accepted_as_shapely_polygon():
    zone = parse_zone(polygon(PARK))
    assert isinstance(zone, Polygon)
    assert zone.exterior.coords[0] == (13.35, 52.51)
    assert zone_area_m2(zone) == pytest.approx(271.6 * 222.6, rel=0.01)


def test_polygon_with_hole_is_accepted_and_hole_is_subtracted():
    hole = [[13.351, 52.5105], [13.352, 52.5105], [13.352, 52.5115], [13.351, 52.5115]]
    zone = parse_zone(polygon(PARK, hole + [hole[0]]))
    assert len(zone.interiors) == 1
    full = zone_area_m2(Polygon(zone.exterior))
    assert zone_area_m2(zone) == pytest.approx(full - zone_area_m2(Polygon(hole)), rel=1e-9)
    assert not point_in_zone(zone, 13.3515, 52.511)  # in the hole
    assert point_in_zone(zone, 13.3505, 52.511)


def test_multipolygon_is_accepted():
    east = [[p[0] + 0.01, p[1]] for p in PARK]
    zone = parse_zone({"type": "MultiPolygon", "coordinates": [[PARK], [east]]})
    assert isinstance(zone, MultiPolygon) and len(zone.geoms) == 2
    assert vertex_count(zone) == 8
    assert zone_area_m2(zone) == pytest.approx(2 * zone_area_m2(zone.geoms[0]), rel=1e-6)


def test_altitudes_and_foreign_members_are_accepted():
    ring = [[*p, 34.5] for p in PARK]
    zone = parse_zone({"type": "Polygon", "coordinates": [ring], "bbox": [0, 0, 1, 1]})
    assert not zone.has_z


def test_orientation_is_not_enforced():
    assert parse_zone(polygon(PARK[::-1])).equals(parse_zone(polygon(PARK)))


def test_edges_of_the_coordinate_range_are_accepted():
    ring = [[179.99, 10], [180, 10], [180, 10.01], [179.99, 10.01], [179.99, 10]]
    assert parse_zone(polygon(ring)).bounds[2] == 180
    ring = [[-180, -10], [-179.99, -10], [-179.99, -9.99], [-180, -9.99], [-180, -10]]
    assert parse_zone(polygon(ring)).bounds[0] == -180


def test_input_is_not_modified():
    obj = polygon(PARK)
    before = copy.deepcopy(obj)
    parse_zone(obj)
    assert obj == before


# ---------------------------------------------------------------- one code per failure


@pytest.mark.parametrize(
    "obj",
    [
        None,
        [PARK],
        "Polygon",
        {},
        {"type": 5, "coordinates": [PARK]},
        {"coordinates": [PARK]},
        {"type": "Polygonn", "coordinates": [PARK]},
        {"type": "Polygon"},
        {"type": "Polygon", "coordinates": "0,0"},
        {"type": "Polygon", "coordinates": []},
        {"type": "Polygon", "coordinates": [5]},
        {"type": "Polygon", "coordinates": PARK},  # a LineString's depth
        {"type": "Polygon", "coordinates": [[PARK]]},  # a MultiPolygon's depth
        {"type": "MultiPolygon", "coordinates": []},
        {"type": "MultiPolygon", "coordinates": [[]]},
        {"type": "MultiPolygon", "coordinates": [PARK]},  # a Polygon's depth
        {"type": "MultiPolygon", "coordinates": {"0": PARK}},
    ],
)
def test_malformed(obj):
    assert rejected(obj).code == "zone_malformed"


def test_malformed_messages_say_where():
    err = rejected({"type": "Polygon", "coordinates": PARK})
    assert err.where == {"path": "coordinates[0]"} and "single position" in err.message
    err = rejected({"type": "MultiPolygon", "coordinates": [[PARK], []]})
    assert err.where == {"path": "coordinates[1]"} and "no rings" in err.message
    err = rejected({"type": "polygon", "coordinates": [PARK]})
    assert "did you mean 'Polygon'" in err.message
    err = rejected({"type": "Polygon", "coordinates": [[[[0, 0], [1, 1]], [1, 0], [0, 1]]]})
    assert err.where == {"path": "coordinates[0][0][0]"} and "too deeply" in err.message


@pytest.mark.parametrize(
    "gtype", ["Point", "LineString", "MultiPoint", "MultiLineString", "GeometryCollection"]
)
def test_other_geometry_types_are_the_wrong_type(gtype):
    err = rejected({"type": gtype, "coordinates": [13.4, 52.5]})
    assert err.code == "zone_wrong_type"
    assert err.message.startswith(f"expected Polygon or MultiPolygon, got {gtype}")


def test_point_is_the_wrong_type():
    err = rejected({"type": "Point", "coordinates": [13.4, 52.5]})
    assert err.code == "zone_wrong_type"
    assert err.message == "expected Polygon or MultiPolygon, got Point"


def test_feature_is_the_wrong_type_and_the_message_suggests_its_geometry():
    feature = {"type": "Feature", "properties": {}, "geometry": polygon(PARK)}
    err = rejected(feature)
    assert err.code == "zone_wrong_type"
    assert "got Feature" in err.message and "geometry" in err.message
    assert rejected({"type": "FeatureCollection", "features": [feature]}).code == (
        "zone_wrong_type"
    )


@pytest.mark.parametrize("position", [[13.35], [13.35, 52.51, 0, 0], [], "13.35,52.51", None, 5])
def test_position_invalid(position):
    ring = [list(p) for p in PARK]
    ring[2] = position
    err = rejected(polygon(ring))
    assert err.code == "position_invalid"
    assert err.where == {"path": "coordinates[0][2]"}
    assert "coordinates[0][2]" in err.message


@pytest.mark.parametrize(
    "value", ["52.512", None, True, False, float("nan"), float("inf"), -float("inf"), {}]
)
def test_coordinate_not_numeric(value):
    ring = [list(p) for p in PARK]
    ring[3][1] = value
    err = rejected(polygon(ring))
    assert err.code == "coordinate_not_numeric"
    assert err.where == {"path": "coordinates[0][3][1]"}


def test_altitude_must_be_numeric_too():
    ring = [[*p, 0] for p in PARK]
    ring[1][2] = "high"
    assert rejected(polygon(ring)).where == {"path": "coordinates[0][1][2]"}


def test_latitude_95_is_out_of_range():
    ring = [list(p) for p in PARK]
    ring[1][1] = 95
    err = rejected(polygon(ring))
    assert err.code == "coordinate_out_of_range"
    assert err.message == "latitude 95 at coordinates[0][1] is outside -90..90"
    assert err.where == {"path": "coordinates[0][1][1]"}


def test_longitude_181_is_out_of_range():
    ring = [list(p) for p in PARK]
    ring[0][0] = ring[-1][0] = 181
    err = rejected(polygon(ring))
    assert err.code == "coordinate_out_of_range"
    assert err.message == "longitude 181 at coordinates[0][0] is outside -180..180"


def test_unclosed_ring():
    err = rejected(polygon(PARK[:-1]))
    assert err.code == "ring_not_closed"
    assert err.where == {"path": "coordinates[0]", "lon": 13.35, "lat": 52.51}
    assert "coordinates[0][3]" in err.message


def test_unclosed_hole_names_the_hole():
    hole = [[13.351, 52.5105], [13.352, 52.5105], [13.352, 52.5115], [13.351, 52.5115]]
    err = rejected(polygon(PARK, hole))
    assert err.code == "ring_not_closed" and err.where["path"] == "coordinates[1]"


@pytest.mark.parametrize(
    "ring",
    [
        [[13.35, 52.51], [13.354, 52.51], [13.354, 52.512]],  # 3 positions, open
        [[13.35, 52.51], [13.354, 52.51], [13.35, 52.51]],  # 3 positions, closed
        [],
    ],
)
def test_ring_of_fewer_than_four_positions(ring):
    err = rejected(polygon(ring))
    assert err.code == "ring_too_few_positions"
    assert err.where == {"path": "coordinates[0]"}


def test_polygon_crossing_the_antimeridian_must_be_split():
    ring = [[179.9, 0], [-179.9, 0], [-179.9, 0.1], [179.9, 0.1], [179.9, 0]]
    err = rejected(polygon(ring))
    assert err.code == "zone_crosses_antimeridian"
    assert "split" in err.message
    assert err.where == {"path": "coordinates[0][1]", "lon": 179.9, "lat": 0.0}


def test_more_vertices_than_allowed():
    limits = ZoneLimits(max_vertices=12)
    angles = np.linspace(0, 2 * np.pi, 13, endpoint=False)
    ring = [[13.4 + 0.01 * math.cos(a), 52.5 + 0.006 * math.sin(a)] for a in angles]
    err = rejected(polygon(ring + [ring[0]]), limits)
    assert err.code == "zone_too_many_vertices"
    assert "13" in err.message and "12" in err.message
    assert vertex_count(parse_zone(polygon(ring[:12] + [ring[0]]), limits)) == 12


def test_vertex_limit_is_checked_before_validity():
    # A huge self-intersecting zigzag: refused for its size, before GEOS sees it.
    ring = [[13.4 + 0.0001 * i, 52.5 + 0.001 * (i % 2)] for i in range(5000)]
    assert rejected(polygon(ring + [ring[0]])).code == "zone_too_many_vertices"


def test_bow_tie_reports_the_crossing_point():
    err = rejected(polygon([[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]))
    assert err.code == "zone_self_intersects"
    assert err.where == {"lon": 0.5, "lat": 0.5}
    assert "lon 0.5, lat 0.5" in err.message


def test_bow_tie_near_berlin_reports_the_crossing_point():
    ring = [[13.40, 52.50], [13.41, 52.51], [13.41, 52.50], [13.40, 52.51], [13.40, 52.50]]
    err = rejected(polygon(ring))
    assert err.code == "zone_self_intersects"
    assert err.where["lon"] == pytest.approx(13.405, abs=1e-9)
    assert err.where["lat"] == pytest.approx(52.505, abs=1e-9)


def test_ring_touching_itself_self_intersects():
    # The boundary passes through (13.352, 52.511) twice: a "Ring Self-intersection".
    ring = [[13.35, 52.51], [13.354, 52.51], [13.352, 52.511], [13.354, 52.512],
            [13.35, 52.512], [13.352, 52.511], [13.35, 52.51]]  # fmt: skip
    err = rejected(polygon(ring))
    assert err.code == "zone_self_intersects"
    assert err.where == {"lon": 13.352, "lat": 52.511}


def test_hole_outside_shell():
    hole = [[13.36, 52.51], [13.361, 52.51], [13.361, 52.511], [13.36, 52.51]]
    err = rejected(polygon(PARK, hole))
    assert err.code == "zone_hole_outside_shell"
    assert set(err.where) == {"lon", "lat"}


def test_nested_holes():
    big = [[13.3505, 52.5102], [13.3535, 52.5102], [13.3535, 52.5118], [13.3505, 52.5118]]
    small = [[13.351, 52.5105], [13.352, 52.5105], [13.352, 52.511], [13.351, 52.511]]
    err = rejected(polygon(PARK, big + [big[0]], small + [small[0]]))
    assert err.code == "zone_nested_rings"


def test_nested_shells():
    inner = [[13.351, 52.5105], [13.352, 52.5105], [13.352, 52.511], [13.351, 52.511]]
    err = rejected({"type": "MultiPolygon", "coordinates": [[PARK], [inner + [inner[0]]]]})
    assert err.code == "zone_nested_rings"


def test_interior_disconnected():
    # A diamond hole touching all four sides cuts the square into four corners.
    diamond = [[13.352, 52.51], [13.354, 52.511], [13.352, 52.512], [13.35, 52.511]]
    err = rejected(polygon(PARK, diamond + [diamond[0]]))
    assert err.code == "zone_interior_disconnected"


def test_overlapping_multipolygon_parts_self_intersect():
    shifted = [[p[0] + 0.002, p[1] + 0.001] for p in PARK]
    err = rejected({"type": "MultiPolygon", "coordinates": [[PARK], [shifted]]})
    assert err.code == "zone_self_intersects"


def test_degenerate_ring_is_invalid_with_shapelys_reason():
    ring = [[13.35, 52.51], [13.354, 52.51], [13.35, 52.51], [13.35, 52.51]]
    err = rejected(polygon(ring))
    assert err.code == "zone_invalid"
    assert "Too few points" in err.message


def test_reason_mapping_covers_every_geos_reason():
    assert _invalid("Duplicate Rings[1 2]").code == "zone_duplicate_rings"
    assert _invalid("Duplicate Rings[1 2]").where == {"lon": 1.0, "lat": 2.0}
    assert _invalid("Ring Self-intersection[1.5e-05 -2]").where == {"lon": 1.5e-05, "lat": -2}
    err = _invalid("Something new[3 4]")
    assert err.code == "zone_invalid" and "Something new" in err.message
    assert _invalid("Invalid Coordinate[nan nan]").where is None


def test_too_large():
    err = rejected(polygon([[13.3, 52.5], [13.4, 52.5], [13.4, 52.6], [13.3, 52.6], [13.3, 52.5]]))
    assert err.code == "zone_too_large"
    assert "km²" in err.message and "25 km²" in err.message and err.where is None


def test_too_small():
    ring = [[13.35, 52.51], [13.35005, 52.51], [13.35005, 52.51005], [13.35, 52.51005]]
    err = rejected(polygon(ring + [ring[0]]))
    assert err.code == "zone_too_small"
    assert "100 m²" in err.message


def test_limits_are_configurable():
    assert rejected(polygon(PARK), ZoneLimits(max_area_m2=50_000)).code == "zone_too_large"
    assert rejected(polygon(PARK), ZoneLimits(min_area_m2=70_000)).code == "zone_too_small"


def test_geo_error_round_trips_through_pickle():
    import pickle

    err = rejected(polygon(PARK[:-1]))
    again = pickle.loads(pickle.dumps(err))
    assert (again.code, again.message, again.where) == (err.code, err.message, err.where)
    assert err.to_dict() == {"code": err.code, "message": err.message, "where": err.where}


# ---------------------------------------------------------------- area, vertices, geofence


def test_one_degree_cell_at_the_equator():
    assert zone_area_m2(box(0, 0, 1, 1)) / 1e6 == pytest.approx(12_364, abs=1)


@pytest.mark.parametrize("lat", [-50.0, 0.0, 45.0, 52.5, 55.0])
def test_a_hundred_metre_square(lat):
    proj = LocalProjection(13.4, lat)
    square = proj.inverse(box(-50, -50, 50, 50))
    assert zone_area_m2(square) == pytest.approx(10_000, rel=0.005)


@pytest.mark.parametrize("lat", [-89.0, -70.0, -45.0, 0.0, 52.5, 75.0, 89.0])
def test_area_close_to_the_ellipsoidal_geodesic_area(lat):
    # The spherical formula is within 0.5 % up to about 55° and within 1 % everywhere.
    ring = [(13.0, lat), (13.03, lat), (13.04, lat + 0.02), (13.0, lat + 0.025)]
    poly = Geodesic.WGS84.Polygon()
    for lon, la in ring:
        poly.AddPoint(la, lon)
    _, _, exact = poly.Compute(False, True)
    tolerance = 0.005 if abs(lat) <= 55 else 0.01
    assert zone_area_m2(Polygon(ring)) == pytest.approx(abs(exact), rel=tolerance)


def test_vertex_count_counts_each_closing_position_once():
    assert vertex_count(box(0, 0, 1, 1)) == 4
    with_hole = box(0, 0, 10, 10).difference(box(4, 4, 6, 6))
    assert vertex_count(with_hole) == 8
    assert vertex_count(MultiPolygon([box(0, 0, 1, 1), with_hole])) == 12


def test_point_in_zone_boundary_counts_as_inside():
    zone = box(13.40, 52.50, 13.41, 52.51)
    assert point_in_zone(zone, 13.405, 52.505)
    assert point_in_zone(zone, 13.40, 52.505)  # on an edge
    assert point_in_zone(zone, 13.41, 52.51)  # on a corner
    assert not point_in_zone(zone, 13.411, 52.505)
    assert isinstance(point_in_zone(zone, 13.405, 52.505), bool)


def test_parse_result_is_a_plain_valid_geometry():
    zone = parse_zone(polygon(PARK))
    assert shapely.is_valid(zone) and not shapely.is_prepared(zone)
