"""Pure geometry for Good Mob: zones, distances in metres, projections and task spots."""

from geo.distance import bbox_around, bearing_deg, distance_m, distance_to_zone_m, haversine_m
from geo.errors import GeoError
from geo.geofence import ZoneFix, fix_problem, zone_status
from geo.matching import Assignment, TaskIndex, match_one, rebalance
from geo.projection import LocalProjection
from geo.tasks import generate_task_points
from geo.zones import ZoneLimits, parse_zone, point_in_zone, vertex_count, zone_area_m2

__all__ = [
    "Assignment",
    "GeoError",
    "LocalProjection",
    "TaskIndex",
    "ZoneFix",
    "ZoneLimits",
    "bbox_around",
    "bearing_deg",
    "distance_m",
    "distance_to_zone_m",
    "fix_problem",
    "generate_task_points",
    "haversine_m",
    "match_one",
    "parse_zone",
    "point_in_zone",
    "rebalance",
    "vertex_count",
    "zone_area_m2",
    "zone_status",
]
