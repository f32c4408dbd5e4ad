"""server.domain.compute: heavy calls run in a worker process, with a cap on pending calls and a
timeout that kills a runaway worker (issue 15, finding 3)."""

from __future__ import annotations

import os
import time

import pytest
import shapely

import geo
from config import load_settings
from server.domain import compute
from server.infra.errors import ApiError


def settings(**overrides):
    return load_settings({}, env="test", **overrides)


def test_a_call_runs_in_another_process_and_returns_its_result():
    s = settings()
    assert compute.run(s, os.getpid) != os.getpid()
    park = shapely.box(13.35, 52.51, 13.354, 52.512)
    assert compute.run(s, geo.generate_task_points, park, 25.0) == geo.generate_task_points(
        park, 25.0
    )


def test_a_geo_error_comes_back_as_itself():
    with pytest.raises(geo.GeoError) as info:
        compute.run(settings(), geo.generate_task_points, shapely.box(0, 0, 0.01, 0.01), 1.0)
    assert info.value.code == "spacing_out_of_range"


def test_a_call_past_the_timeout_is_killed_and_the_pool_recovers():
    s = settings(compute_timeout_s=0.5)
    with pytest.raises(ApiError) as info:
        compute.run(s, time.sleep, 30)
    assert info.value.status == 503 and info.value.code == "server_busy"
    assert compute.pending() == 0
    assert compute.run(s, os.getpid) != os.getpid()  # a fresh worker answers


def test_more_pending_calls_than_the_cap_are_refused_at_once(monkeypatch):
    s = settings(compute_max_pending=2)
    monkeypatch.setattr(compute, "_pending", 2)
    with pytest.raises(ApiError) as info:
        compute.run(s, os.getpid)
    assert info.value.status == 503 and info.value.code == "server_busy"
    monkeypatch.setattr(compute, "_pending", 1)
    assert compute.run(s, os.getpid) != os.getpid()
