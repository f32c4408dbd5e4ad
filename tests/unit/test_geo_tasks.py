"""geo.tasks: hex/square task points inside zones, limits and refusals."""

from __future__ import annotations

import math
import re
import time

import numpy as np
import pytest
import shapely
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree
from shapely.geometry import MultiPolygon, Point, Polygon, box

from geo import GeoError, LocalProjection, generate_task_points, parse_zone, zone_area_m2

PROPERTY = settings(max_examples=60, deadline=None)
HEX_CELL_M2 = math.sqrt(3) / 2  # times spacing²

# A park in Berlin's Tiergarten area, about 300 m x 200 m, slightly irregular.
TIERGARTEN = parse_zone(
    {
        "type": "Polygon",
        "coordinates": [
            [[13.3480, 52.5130], [13.3524, 52.5129], [13.3526, 52.5142], [13.3510, 52.5149],
             [13.3481, 52.5147], [13.3480, 52.5130]]
        ],
    }
)  # fmt: skip


def metres_zone(geom_xy, lon0=13.4, lat0=52.5):
    """A lon/lat zone from a shape drawn in metres around (lon0, lat0)."""
    return LocalProjection(lon0, lat0).inverse(geom_xy)


def projected(zone, points):
    proj = LocalProjection.for_geometry(zone)
    x, y = proj.forward_xy(*np.array(points).T)
    return np.column_stack([x, y])


def refusal(*args, **kwargs) -> GeoError:
    with pytest.raises(GeoError) as info:
        generate_task_points(*args, **kwargs)
    return info.value


# ---------------------------------------------------------------- random zones


@st.composite
def star_zones(draw):
    """A star-shaped lon/lat polygon (radii 20..2000 m), sometimes with a hexagonal hole."""
    n = draw(st.integers(3, 60))
    lon0, lat0 = draw(st.floats(-175, 175)), draw(st.floats(-79.5, 79.5))
    weights = np.array(draw(st.lists(st.floats(1, 10), min_size=n, max_size=n)))
    gaps = 2 * math.pi * weights / weights.sum()
    assume(gaps.max() < math.radians(150))
    angles = draw(st.floats(0, 2 * math.pi)) + np.cumsum(gaps)
    radii = np.array(draw(st.lists(st.floats(20, 2000), min_size=n, max_size=n)))
    shell = np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])
    holes = []
    if draw(st.booleans()):
        a = np.radians(np.arange(0, 360, 60))
        holes = [0.2 * radii.min() * np.column_stack([np.cos(a), np.sin(a)])]
    proj = LocalProjection(lon0, lat0)
    return proj.inverse(Polygon(shell, holes))


@PROPERTY
@given(star_zones(), st.floats(5, 400), st.sampled_from(["hex", "square"]))
def test_every_point_is_inside_the_zone_and_outside_its_holes(zone, spacing, grid):
    # Keep the expected count under the cap so the property is about placement.
    spacing = max(spacing, math.sqrt(zone_area_m2(zone) / 3000))
    try:
        points = generate_task_points(zone, spacing, grid=grid, max_tasks=10_000)
    except GeoError as err:
        assert err.code == "zone_has_no_room"
        return
    assert points
    for lon, lat in points:
        assert zone.contains(Point(lon, lat))
        for hole in zone.interiors:
            assert not Polygon(hole).covers(Point(lon, lat))
    assert len(set(points)) == len(points)
    keys = [(-lat, lon) for lon, lat in points]
    assert keys == sorted(keys)


# ---------------------------------------------------------------- grids


@pytest.fixture(scope="module")
def big_square():
    return metres_zone(box(-1000, -1000, 1000, 1000))


@pytest.mark.parametrize(("grid", "cell_m2"), [("hex", HEX_CELL_M2 * 2500), ("square", 2500)])
def test_counts_roughly_match_area_over_cell_area(big_square, grid, cell_m2):
    points = generate_task_points(big_square, 50.0, grid=grid, max_tasks=5000)
    expected = 4_000_000 / cell_m2
    assert expected <= len(points) <= 1.1 * expected  # edge cells add a few


def test_hex_gives_about_15_percent_more_points_than_square(big_square):
    n_hex = len(generate_task_points(big_square, 50.0, grid="hex", max_tasks=5000))
    n_square = len(generate_task_points(big_square, 50.0, grid="square", max_tasks=5000))
    assert n_hex / n_square == pytest.approx(2 / math.sqrt(3), rel=0.05)


@pytest.mark.parametrize("grid", ["hex", "square"])
@pytest.mark.parametrize("spacing", [25.0, 50.0, 137.5])
def test_neighbouring_points_are_spacing_apart(big_square, grid, spacing):
    points = generate_task_points(big_square, spacing, grid=grid, max_tasks=10_000)
    xy = projected(big_square, points)
    nearest, _ = cKDTree(xy).query(xy, k=2)
    nn = nearest[:, 1]
    # Cell centres are exactly `spacing` apart; only clipped edge cells move their point.
    assert np.median(nn) == pytest.approx(spacing, rel=1e-6)
    assert nn.min() >= 0.3 * spacing
    zone_xy = LocalProjection.for_geometry(big_square).forward(big_square)
    inner = shapely.distance(zone_xy.exterior, shapely.points(xy)) > 2 * spacing
    neighbours = 6 if grid == "hex" else 4
    around, _ = cKDTree(xy).query(xy[inner], k=neighbours + 1)
    np.testing.assert_allclose(around[:, 1:], spacing, rtol=1e-6)


def test_points_come_north_to_south_then_west_to_east(big_square):
    points = generate_task_points(big_square, 100.0, grid="square")
    assert points[0][1] > points[-1][1]
    first_row = [p for p in points if p[1] == points[0][1]]
    assert len(first_row) >= 19 and first_row == sorted(first_row)
    assert generate_task_points(big_square, 100.0, grid="square") == points  # deterministic


def test_holes_and_edges_clip_cells():
    zone = metres_zone(box(-500, -500, 500, 500).difference(box(-200, -200, 200, 200)))
    points = generate_task_points(zone, 50.0, max_tasks=5000)
    hole = metres_zone(box(-200, -200, 200, 200))
    assert not any(hole.covers(Point(p)) for p in points)
    assert all(zone.contains(Point(p)) for p in points)
    area = zone_area_m2(zone)
    assert len(points) == pytest.approx(area / (HEX_CELL_M2 * 2500), rel=0.2)


def test_multipolygon_zone_gets_points_in_each_part():
    zone = MultiPolygon(
        [metres_zone(box(-500, -100, -300, 100)), metres_zone(box(300, -100, 500, 100))]
    )
    points = generate_task_points(zone, 25.0)
    left = [p for p in points if zone.geoms[0].contains(Point(p))]
    right = [p for p in points if zone.geoms[1].contains(Point(p))]
    assert len(left) + len(right) == len(points)
    assert abs(len(left) - len(right)) <= 0.1 * len(points)


def test_narrow_strip_moves_points_onto_the_zone():
    # 8 m wide: narrower than a 25 m cell, so most centres fall outside and move in.
    zone = metres_zone(Polygon([(-300, -4), (300, 46), (300, 54), (-300, 4)]))
    points = generate_task_points(zone, 25.0)
    assert len(points) > 10
    assert all(zone.contains(Point(p)) for p in points)


def test_tiergarten_park_at_25_m():
    assert 55_000 <= zone_area_m2(TIERGARTEN) <= 65_000
    hex_points = generate_task_points(TIERGARTEN, 25.0)
    square_points = generate_task_points(TIERGARTEN, 25.0, grid="square")
    # ~60,000 m² / 541 m² per hex cell ≈ 110 cells, plus clipped edge cells.
    assert 100 <= len(hex_points) <= 150
    assert 85 <= len(square_points) <= 125
    assert all(TIERGARTEN.contains(Point(p)) for p in hex_points + square_points)


# ---------------------------------------------------------------- refusals


def smallest_spacing(err: GeoError) -> int:
    match = re.search(r"smallest spacing that fits is (\d+) m \(([\d,]+) points\)", err.message)
    assert match, err.message
    return int(match[1])


def test_too_many_tasks_is_refused_early_with_the_spacing_that_fits():
    zone = metres_zone(box(-500, -500, 500, 500))  # 1 km², ~11,500 hex cells at 10 m
    started = time.perf_counter()
    err = refusal(zone, 10.0)
    assert time.perf_counter() - started < 1.0
    assert err.code == "too_many_tasks" and err.where is None
    assert "more than the limit of 2,000" in err.message
    fits = smallest_spacing(err)
    assert 22 <= fits <= 26
    assert len(generate_task_points(zone, fits)) <= 2000
    assert refusal(zone, fits - 1).code == "too_many_tasks"


def test_too_many_tasks_after_counting_is_not_truncated():
    zone = metres_zone(box(-500, -500, 500, 500))
    err = refusal(zone, 50.0, max_tasks=300)  # ~460 points: counted, then refused
    assert err.code == "too_many_tasks"
    assert "about" not in err.message
    n = int(re.search(r"would give ([\d,]+) task points", err.message)[1].replace(",", ""))
    assert n == len(generate_task_points(zone, 50.0, max_tasks=1000))
    fits = smallest_spacing(err)
    assert len(generate_task_points(zone, fits, max_tasks=300)) <= 300


def test_exactly_max_tasks_is_allowed():
    zone = metres_zone(box(-500, -500, 500, 500))
    n = len(generate_task_points(zone, 50.0, max_tasks=1000))
    assert len(generate_task_points(zone, 50.0, max_tasks=n)) == n
    assert refusal(zone, 50.0, max_tasks=n - 1).code == "too_many_tasks"


def test_no_spacing_fits_a_tiny_cap():
    zone = metres_zone(box(-10_000, -600, 10_000, 600))  # 24 km², 20 km long
    err = refusal(zone, 5000.0, max_tasks=1)
    assert err.code == "too_many_tasks"
    assert "no spacing up to 5000 m fits" in err.message


@pytest.mark.parametrize(
    "spacing", [4.99, 5000.01, 0, -25, float("nan"), float("inf"), "25", None, True]
)
def test_spacing_out_of_range(spacing):
    err = refusal(TIERGARTEN, spacing)
    assert err.code == "spacing_out_of_range"
    assert "5 to 5000" in err.message


def test_spacing_bounds_are_inclusive():
    assert generate_task_points(metres_zone(box(-10, -10, 10, 10)), 5, max_tasks=100)
    assert len(generate_task_points(metres_zone(box(-2500, -2500, 2500, 2500)), 5000)) >= 1


def test_unknown_grid():
    err = refusal(TIERGARTEN, 25.0, grid="triangle")
    assert err.code == "grid_unknown" and "triangle" in err.message


def test_zone_with_no_room():
    tiny = metres_zone(box(0, 0, 10, 10))  # 100 m²: under 5 % of a 1 km hex cell
    err = refusal(tiny, 1000.0)
    assert err.code == "zone_has_no_room" and err.where is None
    assert refusal(Polygon(), 25.0).code == "zone_has_no_room"


def test_max_tasks_must_be_positive():
    with pytest.raises(ValueError):
        generate_task_points(TIERGARTEN, 25.0, max_tasks=0)


def test_sliver_cells_get_no_point():
    # The grid is centred on the zone: a 50 m wide strip fills one column of 50 m cells.
    # At 2 m wide, each clipped cell is 4 % of a cell, a sliver, so no point remains.
    strip = metres_zone(box(-25, -500, 25, 500))
    assert len(generate_task_points(strip, 50.0, grid="square")) >= 20
    sliver = metres_zone(box(-1, -500, 1, 500))
    assert refusal(sliver, 50.0, grid="square").code == "zone_has_no_room"


# ---------------------------------------------------------------- speed


def test_a_25_km2_zone_at_25_m_is_fast():
    zone = metres_zone(box(-2495, -2495, 2495, 2495))
    generate_task_points(zone, 25.0, max_tasks=100_000)  # warm up
    started = time.perf_counter()
    points = generate_task_points(zone, 25.0, max_tasks=100_000)
    elapsed = time.perf_counter() - started
    assert len(points) > 40_000
    assert elapsed < 2.0, f"{elapsed:.2f} s"  # ~0.15 s on the 2-core dev box


def test_triangle_points_are_inside_in_metres_too():
    zone = metres_zone(Polygon([(0, 0), (400, 0), (0, 300)]))
    points = generate_task_points(zone, 25.0)
    xy = projected(zone, points)
    assert shapely.contains_xy(LocalProjection.for_geometry(zone).forward(zone), *xy.T).all()


def test_points_that_round_outside_fall_back_to_a_point_computed_in_lon_lat(monkeypatch):
    # Simulate float rounding gone wrong: the inverse projection of points lands 7 m east.
    zone = metres_zone(box(-300, -200, 300, 200))
    expected = len(generate_task_points(zone, 25.0))
    exact = LocalProjection.inverse_xy

    def shifted(self, x, y):
        lon, lat = exact(self, x, y)
        return lon + 1e-4, lat

    monkeypatch.setattr(LocalProjection, "inverse_xy", shifted)
    points = generate_task_points(zone, 25.0)
    assert len(points) == expected
    assert all(zone.contains(Point(p)) for p in points)
    assert len(set(points)) == len(points)


# ---------------------------------------------------------------- many-vertex zones (#15.3)
#
# The grid code clips cells with GEOS's fast rectangle clipper before the exact overlay, and
# the refusal searches the fitting spacing with a few point-free counts. The reference below
# is the specification done the slow, obvious way (every cell of the bounding box overlaid
# with the whole zone); the fast code must give the same points.

from geo import tasks as geo_tasks  # noqa: E402
from tests.factories import star_zone  # noqa: E402

STAR = parse_zone(star_zone())  # the 2,000-vertex, ~1.1 km² star of the December attack


def reference_cells(zone, spacing, grid):
    """The cells that get a task point, in projected metres, found by overlaying every cell
    of the bounding box with the whole zone (the 5 % sliver rule), with each one's point when
    its centre is inside the zone (else None: a point somewhere in the cell's part)."""
    zone_xy = LocalProjection.for_geometry(zone).forward(zone)
    layout = geo_tasks._Layout(grid, spacing)
    x0, y0, x1, y1 = zone_xy.bounds
    cells, centres = [], []
    first_row = math.floor((y0 - layout.half_h) / layout.dy)
    for row in range(first_row, math.ceil((y1 + layout.half_h) / layout.dy) + 1):
        shift = (row % 2) * layout.odd_row_shift
        c0 = math.floor((x0 - layout.half_w - shift) / layout.dx)
        c1 = math.ceil((x1 + layout.half_w - shift) / layout.dx)
        cx = np.arange(c0, c1 + 1) * layout.dx + shift
        cy = np.full(len(cx), row * layout.dy)
        row_cells = layout.cells(cx, cy)
        area = shapely.area(shapely.intersection(row_cells, zone_xy))
        for x, y, cell, a in zip(cx, cy, row_cells, area, strict=True):
            if a >= 0.05 * layout.cell_area:
                cells.append(cell)
                # (a centre within rounding of the boundary may be moved in: no check)
                clear = shapely.distance(zone_xy.boundary, shapely.Point(x, y)) > 1e-6
                inside = clear and shapely.contains_xy(zone_xy, x, y)
                centres.append((x, y) if inside else None)
    return zone_xy, cells, centres


def assert_same_points(zone, spacing, grid, max_tasks=10_000):
    """One point per reference cell, inside that cell and the zone; the cell's centre where
    the centre is inside the zone."""
    zone_xy, cells, centres = reference_cells(zone, spacing, grid)
    try:
        points = generate_task_points(zone, spacing, grid=grid, max_tasks=max_tasks)
    except GeoError as err:
        assert err.code == "zone_has_no_room" and not cells
        return
    got = projected(zone, points)
    assert len(got) == len(cells)
    hits = shapely.STRtree(cells).query(shapely.points(got), "intersects")
    owner = np.full(len(got), -1)
    owner[hits[0]] = hits[1]
    assert sorted(owner.tolist()) == list(range(len(cells)))  # each cell holds one point
    for (x, y), k in zip(got, owner, strict=True):
        if centres[k] is not None:
            assert math.dist((x, y), centres[k]) < 1e-6
    assert zone_xy.buffer(1e-6).contains(shapely.multipoints(got))


@PROPERTY
@given(star_zones(), st.floats(5, 400), st.sampled_from(["hex", "square"]))
def test_points_are_those_of_the_slow_obvious_grid(zone, spacing, grid):
    spacing = max(spacing, math.sqrt(zone_area_m2(zone) / 1500))
    assert_same_points(zone, spacing, grid)


@pytest.mark.parametrize(("spacing", "grid"), [(60.0, "hex"), (100.0, "square"), (45.0, "hex")])
def test_the_attack_star_gets_the_points_of_the_slow_obvious_grid(spacing, grid):
    assert_same_points(STAR, spacing, grid)


def test_an_invalid_fast_clip_falls_back_to_the_exact_overlay(monkeypatch):
    # Make GEOS's rectangle clipper return an invalid bow-tie every time: every piece must be
    # recomputed exactly, and the points stay those of the reference.
    bow_tie = Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    monkeypatch.setattr(geo_tasks.shapely, "clip_by_rect", lambda *a, **k: bow_tie)
    zone = metres_zone(box(-300, -200, 300, 200).difference(box(-50, -50, 50, 50)))
    assert_same_points(zone, 25.0, "hex")
    assert_same_points(TIERGARTEN, 20.0, "square")


@pytest.mark.parametrize(
    ("zone", "spacing", "fits", "points"),
    [
        # the figures the earlier full-grid bisection gave for the same requests
        (STAR, 5.0, 39, 1997),
        (STAR, 30.0, 39, 1997),
        (metres_zone(box(-500, -500, 500, 500)), 5.0, 25, 1903),
    ],
)
def test_the_spacing_search_gives_what_the_full_grid_bisection_gave(zone, spacing, fits, points):
    err = refusal(zone, spacing)
    assert err.code == "too_many_tasks"
    assert f"the smallest spacing that fits is {fits} m ({points:,} points)" in err.message


def test_the_spacing_search_counts_few_grids(monkeypatch):
    counted = []
    count = geo_tasks._count

    def spy(zone_xy, grid, spacing, max_tasks):
        counted.append(spacing)
        return count(zone_xy, grid, spacing, max_tasks)

    monkeypatch.setattr(geo_tasks, "_count", spy)
    refusal(STAR, 5.0)
    assert len(counted) <= 6, counted  # the full-grid bisection built 7 whole grids
    counted.clear()
    refusal(metres_zone(box(-500, -500, 500, 500)), 5.0)
    assert len(counted) <= 3, counted  # it built 6


@PROPERTY
@given(
    star_zones(),
    st.integers(5, 200),
    st.sampled_from(["hex", "square"]),
    st.integers(20, 400),
)
def test_the_advised_spacing_fits_and_one_metre_less_does_not(zone, spacing, grid, max_tasks):
    try:
        generate_task_points(zone, spacing, grid=grid, max_tasks=max_tasks)
        return
    except GeoError as err:
        if err.code != "too_many_tasks":
            return
        message = err.message
    match = re.search(r"smallest spacing that fits is (\d+) m \(([\d,]+) points\)", message)
    assume(match)  # (or no spacing up to 5000 m fits)
    fits, n = int(match[1]), int(match[2].replace(",", ""))
    assert fits > spacing
    assert len(generate_task_points(zone, fits, grid=grid, max_tasks=max_tasks)) == n <= max_tasks
    if fits - 1 > spacing:
        with pytest.raises(GeoError) as below:
            generate_task_points(zone, fits - 1, grid=grid, max_tasks=max_tasks)
        assert below.value.code == "too_many_tasks"
