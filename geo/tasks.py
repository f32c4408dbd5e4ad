"""Task spots: one point per cell of a hex or square grid (spacing in metres) inside a zone."""

from __future__ import annotations

import math
import numbers

import numpy as np
import shapely

from geo.errors import GeoError
from geo.projection import LocalProjection

__all__ = ["GRIDS", "MAX_SPACING_M", "MIN_SPACING_M", "generate_task_points"]

#: Grid layouts understood by :func:`generate_task_points`.
GRIDS = ("hex", "square")
#: Allowed range of the grid spacing, metres.
MIN_SPACING_M = 5.0
MAX_SPACING_M = 5000.0
# A clipped cell smaller than this fraction of a full cell gets no task point.
_SLIVER_FRACTION = 0.05
# Refuse without building cells when area / cell area exceeds this multiple of the cap.
_EARLY_REFUSAL_FACTOR = 4


class _Layout:
    """Geometry of one grid in projected metres, centred on the projection origin.

    hex: pointy-top hexagons, centre-to-centre distance ``spacing`` between all six
    neighbours (rows ``spacing·√3/2`` apart, odd rows shifted by half a spacing).
    square: squares of side ``spacing``.
    """

    def __init__(self, grid: str, spacing: float) -> None:
        self.grid = grid
        self.spacing = spacing
        if grid == "hex":
            circumradius = spacing / math.sqrt(3.0)
            self.dx = spacing
            self.dy = spacing * math.sqrt(3.0) / 2.0
            self.half_w = spacing / 2.0
            self.half_h = circumradius
            self.odd_row_shift = spacing / 2.0
            angles = np.radians(np.arange(30.0, 390.0, 60.0))
            corners = circumradius * np.column_stack([np.cos(angles), np.sin(angles)])
            self.cell_area = math.sqrt(3.0) / 2.0 * spacing**2
        else:
            h = spacing / 2.0
            self.dx = self.dy = spacing
            self.half_w = self.half_h = h
            self.odd_row_shift = 0.0
            corners = np.array([[h, -h], [h, h], [-h, h], [-h, -h]])
            self.cell_area = spacing**2
        self.corners = np.vstack([corners, corners[:1]])  # closed ring around (0, 0)

    def candidates(self, zone_xy: shapely.Geometry):
        """Cells that may meet the zone: centres ``(cx, cy)`` and each one's row piece.

        Each grid row is a horizontal strip as tall as a cell; the strip's intersection with
        the zone (its "row piece", returned as ``pieces[piece_of_cell]``) gives the x-ranges
        where cells are needed, so thin or sparse zones never cost a tiling of their whole
        bounding box, and clipping a cell by its small row piece is the same as clipping it
        by the whole zone, only much cheaper. Strips are cut from bands of about √rows
        rows, themselves cut from the zone, so no step intersects many strips with a
        complex zone.
        """
        min_x, min_y, max_x, max_y = zone_xy.bounds
        rows = np.arange(
            math.floor((min_y - self.half_h) / self.dy),
            math.ceil((max_y + self.half_h) / self.dy) + 1,
        )
        row_y = rows * self.dy
        left, right = min_x - self.dx, max_x + self.dx
        band_size = max(1, math.isqrt(len(rows)))
        band_of_row = np.arange(len(rows)) // band_size
        band_first = np.arange(0, len(rows), band_size)
        band_last = np.minimum(band_first + band_size, len(rows)) - 1
        bands = shapely.intersection(
            shapely.box(
                left, row_y[band_first] - self.half_h, right, row_y[band_last] + self.half_h
            ),
            zone_xy,
        )
        strips = shapely.box(left, row_y - self.half_h, right, row_y + self.half_h)
        pieces = shapely.intersection(strips, bands[band_of_row])

        parts, part_row = shapely.get_parts(pieces, return_index=True)
        nonempty = ~shapely.is_empty(parts)
        parts, part_row = parts[nonempty], part_row[nonempty]
        bounds = shapely.bounds(parts)
        row = rows[part_row]
        shift = (row % 2) * self.odd_row_shift
        j0 = np.ceil((bounds[:, 0] - self.half_w - shift) / self.dx).astype(np.int64)
        j1 = np.floor((bounds[:, 2] + self.half_w - shift) / self.dx).astype(np.int64)
        counts = np.maximum(j1 - j0 + 1, 0)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        cols = np.repeat(j0, counts) + (np.arange(int(counts.sum())) - starts)
        pairs = np.unique(np.column_stack([np.repeat(part_row, counts), cols]), axis=0)
        piece_of_cell, cols = pairs[:, 0], pairs[:, 1]
        cell_rows = rows[piece_of_cell]
        cx = cols * self.dx + (cell_rows % 2) * self.odd_row_shift
        cy = cell_rows * self.dy
        return cx.astype(float), cy.astype(float), pieces, piece_of_cell

    def cells(self, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
        """Cell polygons (a numpy array of shapely Polygons) around the given centres."""
        rings = self.corners[None, :, :] + np.column_stack([cx, cy])[:, None, :]
        return shapely.polygons(rings)


def _check_spacing(spacing_m: object) -> float:
    ok = isinstance(spacing_m, numbers.Real) and not isinstance(spacing_m, bool)
    spacing = float(spacing_m) if ok else math.nan
    if not (math.isfinite(spacing) and MIN_SPACING_M <= spacing <= MAX_SPACING_M):
        raise GeoError(
            "spacing_out_of_range",
            f"spacing_m must be a number of metres from {MIN_SPACING_M:g} to"
            f" {MAX_SPACING_M:g}, got {spacing_m!r}",
        )
    return spacing


def _grid_points(zone_xy: shapely.Geometry, layout: _Layout):
    """Task points in projected metres, and for each the cell polygon it came from.

    Cells wholly inside the zone keep their centre. The others are clipped by the zone
    (holes and edges included); clipped parts under 5 % of a cell are dropped; a clipped
    cell keeps its centre when the centre is inside the zone, else gets the
    ``point_on_surface`` of its largest polygon.
    """
    cx, cy, pieces, piece_of_cell = layout.candidates(zone_xy)
    cells = layout.cells(cx, cy)
    inside = shapely.contains_properly(zone_xy, cells)
    edge = np.flatnonzero(~inside)
    edge = edge[shapely.intersects(zone_xy, cells[edge])]
    clipped = shapely.intersection(cells[edge], pieces[piece_of_cell[edge]])
    big_enough = shapely.area(clipped) >= _SLIVER_FRACTION * layout.cell_area
    edge, clipped = edge[big_enough], clipped[big_enough]

    px, py = cx.copy(), cy.copy()
    centre_out = ~shapely.contains_xy(zone_xy, cx[edge], cy[edge])
    if centre_out.any():
        moved = edge[centre_out]
        parts, owner = shapely.get_parts(clipped[centre_out], return_index=True)
        order = np.lexsort((-shapely.area(parts), owner))  # by owner, largest part first
        _, first = np.unique(owner[order], return_index=True)
        surface = shapely.point_on_surface(parts[order][first])
        px[moved], py[moved] = shapely.get_x(surface), shapely.get_y(surface)

    keep = np.sort(np.concatenate([np.flatnonzero(inside), edge]))
    return px[keep], py[keep], cells[keep]


def _count(zone_xy: shapely.Geometry, grid: str, spacing: float, max_tasks: int) -> float:
    """Number of task points a grid gives; an area estimate when clearly far over the cap."""
    layout = _Layout(grid, spacing)
    estimate = zone_xy.area / layout.cell_area
    if estimate > _EARLY_REFUSAL_FACTOR * max_tasks:
        return estimate
    return len(_grid_points(zone_xy, layout)[0])


def _smallest_fitting_spacing(zone_xy, grid: str, spacing: float, max_tasks: int, count: float):
    """The smallest whole-metre spacing (above ``spacing``) whose grid fits ``max_tasks``.

    Returns ``(spacing_m, n_points)``, or ``None`` when even the largest spacing is too
    dense. The count falls roughly as 1/spacing², which gives the first guess; the guess is
    raised until it fits, then bisected down to the metre (a handful of small grids).
    """
    top = int(MAX_SPACING_M)
    lo = math.floor(spacing)  # too dense, like `spacing` itself
    hi = min(max(math.ceil(spacing * math.sqrt(count / max_tasks)), lo + 1), top)
    n_hi = _count(zone_xy, grid, hi, max_tasks)
    while n_hi > max_tasks:
        if hi >= top:
            return None
        lo, hi = hi, min(max(hi + 1, math.ceil(hi * 1.1)), top)
        n_hi = _count(zone_xy, grid, hi, max_tasks)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        n_mid = _count(zone_xy, grid, mid, max_tasks)
        if n_mid <= max_tasks:
            hi, n_hi = mid, n_mid
        else:
            lo = mid
    return hi, int(n_hi)


def _too_many(zone_xy, grid: str, spacing: float, max_tasks: int, count: float, *, about: bool):
    fit = _smallest_fitting_spacing(zone_xy, grid, spacing, max_tasks, count)
    if fit is None:
        advice = (
            f"no spacing up to {MAX_SPACING_M:g} m fits; draw a smaller zone or allow more tasks"
        )
    else:
        advice = f"the smallest spacing that fits is {fit[0]} m ({fit[1]:,} points)"
    return GeoError(
        "too_many_tasks",
        f"a {grid} grid with {spacing:g} m spacing would give {'about ' if about else ''}"
        f"{round(count):,} task points, more than the limit of {max_tasks:,}; {advice}",
    )


def generate_task_points(
    zone: shapely.Geometry, spacing_m: float, grid: str = "hex", max_tasks: int = 2000
) -> list[tuple[float, float]]:
    """Task points ``(lon, lat)`` inside a lon/lat zone, one per grid cell.

    The zone is projected to metres (:class:`LocalProjection`) and tiled with a hex grid
    (centre-to-centre ``spacing_m``) or a square grid (side ``spacing_m``). Every cell is
    clipped by the zone, holes included; slivers under 5 % of a cell are dropped. A cell's
    point is its centre when that lies inside the zone, else a point inside the cell's
    largest clipped piece. Every returned point is checked to be inside the zone in lon/lat.
    Points come north to south, then west to east.

    Raises :class:`GeoError` with code ``spacing_out_of_range`` (``spacing_m`` outside
    5..5000 m), ``grid_unknown``, ``too_many_tasks`` (more than ``max_tasks`` points; the
    message gives the smallest spacing that fits; nothing is truncated) or
    ``zone_has_no_room``.

    >>> from shapely import box
    >>> park = box(13.350, 52.510, 13.354, 52.512)  # about 270 m x 220 m
    >>> points = generate_task_points(park, 25.0)
    >>> len(points), len(generate_task_points(park, 25.0, grid="square"))
    (127, 99)
    >>> all(park.contains(shapely.Point(p)) for p in points)
    True
    >>> try:
    ...     generate_task_points(park, 10.0, max_tasks=200)
    ... except GeoError as err:
    ...     print(err.code, "-", err.message)  # doctest: +NORMALIZE_WHITESPACE
    too_many_tasks - a hex grid with 10 m spacing would give 769 task points, more than the
    limit of 200; the smallest spacing that fits is 20 m (189 points)
    """
    spacing = _check_spacing(spacing_m)
    if grid not in GRIDS:
        raise GeoError("grid_unknown", f"grid must be one of {', '.join(GRIDS)}, got {grid!r}")
    if isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 1:
        raise ValueError(f"max_tasks must be a positive integer, got {max_tasks!r}")
    if zone is None or zone.is_empty:
        raise GeoError("zone_has_no_room", "the zone is empty, so it has no room for a task")

    proj = LocalProjection.for_geometry(zone)
    zone_xy = proj.forward(zone)
    shapely.prepare(zone_xy)
    layout = _Layout(grid, spacing)
    estimate = zone_xy.area / layout.cell_area
    if estimate > _EARLY_REFUSAL_FACTOR * max_tasks:
        raise _too_many(zone_xy, grid, spacing, max_tasks, estimate, about=True)

    px, py, cells = _grid_points(zone_xy, layout)
    if len(px) > max_tasks:
        raise _too_many(zone_xy, grid, spacing, max_tasks, len(px), about=False)

    lon, lat = proj.inverse_xy(px, py)
    shapely.prepare(zone)
    bad = np.flatnonzero(~shapely.contains_xy(zone, lon, lat))
    if len(bad):
        # Float rounding put a point on or just outside the boundary: redo it in lon/lat.
        keep = np.ones(len(lon), dtype=bool)
        for k in bad:
            piece = shapely.intersection(proj.inverse(cells[k]), zone)
            polys = [p for p in shapely.get_parts(piece) if p.geom_type == "Polygon"]
            point = shapely.point_on_surface(max(polys, key=lambda p: p.area)) if polys else None
            if point is not None and zone.contains(point):
                lon[k], lat[k] = point.x, point.y
            else:
                keep[k] = False
        lon, lat = lon[keep], lat[keep]
    if len(lon) == 0:
        raise GeoError(
            "zone_has_no_room",
            f"the zone is too small or too thin for a {grid} grid with {spacing:g} m spacing;"
            " use a smaller spacing or place the task by hand",
        )

    order = np.lexsort((lon, -lat))
    return list(zip(lon[order].tolist(), lat[order].tolist(), strict=True))
