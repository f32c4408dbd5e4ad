"""geo.matching: nearest task with room, keeping a task while walking, the pre-GO re-balance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from geo.distance import haversine_m
from geo.matching import COST_UNIT_M, Assignment, TaskIndex, match_one, rebalance
from geo.projection import LocalProjection

PROPERTY = settings(max_examples=50, deadline=None)
PROJ = LocalProjection(13.4050, 52.5200)


def lonlat(xy_m):
    """Points given as (east, north) metres from the centre → (lons, lats) arrays."""
    xy = np.asarray(xy_m, dtype=float).reshape(-1, 2)
    lons, lats = PROJ.inverse_xy(xy[:, 0], xy[:, 1])
    return np.asarray(lons), np.asarray(lats)


def dense_optimum_m(p_lons, p_lats, t_lons, t_lats, capacity) -> float:
    """Brute force: one column per capacity slot, scipy's assignment (a maximum matching of
    least total cost when the slots are fewer than the people)."""
    slots = np.repeat(np.arange(len(capacity)), capacity)
    if slots.size == 0 or len(p_lons) == 0:
        return 0.0
    cost = haversine_m(
        np.asarray(p_lons)[:, None], np.asarray(p_lats)[:, None], t_lons[slots], t_lats[slots]
    )
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].sum())


def check_assignment(a: Assignment, p_lons, p_lats, t_lons, t_lats, capacity, open_mask=None):
    """Capacity is never exceeded, closed tasks get nobody, distances are the walks."""
    capacity = np.asarray(capacity)
    usable = capacity if open_mask is None else np.where(open_mask, capacity, 0)
    assert a.task_index.shape == (len(p_lons),)
    assert ((a.task_index >= -1) & (a.task_index < len(t_lons))).all()
    loads = a.loads(len(t_lons))
    assert (loads <= usable).all(), "over capacity"
    assert a.unassigned == max(0, len(p_lons) - int(usable.sum()))
    assert a.unassigned == int((a.task_index == -1).sum())
    ok = a.task_index >= 0
    walk = haversine_m(
        np.asarray(p_lons)[ok],
        np.asarray(p_lats)[ok],
        t_lons[a.task_index[ok]],
        t_lats[a.task_index[ok]],
    )
    np.testing.assert_allclose(a.distance_m[ok], walk, rtol=1e-12, atol=1e-9)
    assert np.isnan(a.distance_m[~ok]).all()
    assert a.total_m == pytest.approx(float(walk.sum()), abs=1e-6)
    assert a.seconds >= 0


# --- rebalance: hand-made cases with a known optimum -------------------------------------


def test_greedy_is_suboptimal_and_optimal_finds_the_optimum():
    # Tasks 100 m apart on a north-south line; p0 10 m from task 0, p1 50 m beyond it.
    t_lons, t_lats = lonlat([(0, 0), (0, 100)])
    p_lons, p_lats = lonlat([(0, 10), (0, -50)])
    greedy = rebalance(p_lons, p_lats, t_lons, t_lats, [1, 1], method="greedy")
    best = rebalance(p_lons, p_lats, t_lons, t_lats, [1, 1], method="optimal")
    for a in (greedy, best):
        check_assignment(a, p_lons, p_lats, t_lons, t_lats, [1, 1])
    assert greedy.method == "greedy" and best.method == "optimal"
    assert greedy.task_index.tolist() == [0, 1]  # p0 is nearest-first and takes task 0
    assert best.task_index.tolist() == [1, 0]
    assert best.total_m < greedy.total_m - 10  # 140 m against 160 m
    brute = dense_optimum_m(p_lons, p_lats, t_lons, t_lats, [1, 1])
    assert best.total_m == pytest.approx(brute, abs=2 * COST_UNIT_M)
    assert brute == pytest.approx(140, rel=2e-3)


def test_capacity_slots_are_shared_optimally():
    # Task 0 (capacity 2) is nearest for all three people; the third must walk to task 1.
    t_lons, t_lats = lonlat([(0, 0), (300, 0)])
    p_lons, p_lats = lonlat([(-20, 0), (0, 30), (100, 0)])
    capacity = [2, 1]
    best = rebalance(p_lons, p_lats, t_lons, t_lats, capacity)
    check_assignment(best, p_lons, p_lats, t_lons, t_lats, capacity)
    assert best.task_index.tolist() == [0, 0, 1]
    brute = dense_optimum_m(p_lons, p_lats, t_lons, t_lats, capacity)
    assert best.total_m == pytest.approx(brute, abs=3 * COST_UNIT_M)


def test_more_people_than_places_leaves_exactly_the_surplus_unassigned():
    t_lons, t_lats = lonlat([(0, 0), (50, 0)])
    p_lons, p_lats = lonlat([(0, 5), (50, 5), (25, 0), (400, 0)])
    for method in ("greedy", "optimal"):
        a = rebalance(p_lons, p_lats, t_lons, t_lats, [1, 1], method=method)
        check_assignment(a, p_lons, p_lats, t_lons, t_lats, [1, 1])
        assert a.unassigned == 2
    best = rebalance(p_lons, p_lats, t_lons, t_lats, [1, 1])
    assert best.task_index.tolist() == [0, 1, -1, -1]  # the two nearest people are placed


def test_closed_and_zero_capacity_tasks_take_nobody():
    t_lons, t_lats = lonlat([(0, 0), (10, 0), (500, 0)])
    p_lons, p_lats = lonlat([(0, 1), (10, 1)])
    open_mask = [False, True, True]
    capacity = [5, 0, 5]
    for method in ("greedy", "optimal"):
        a = rebalance(p_lons, p_lats, t_lons, t_lats, capacity, method=method, open_mask=open_mask)
        check_assignment(a, p_lons, p_lats, t_lons, t_lats, capacity, open_mask)
        assert a.task_index.tolist() == [2, 2]


def test_empty_inputs():
    t_lons, t_lats = lonlat([(0, 0)])
    none = rebalance([], [], t_lons, t_lats, [3])
    assert none.task_index.shape == (0,) and none.total_m == 0.0 and none.unassigned == 0
    p_lons, p_lats = lonlat([(0, 0), (1, 1)])
    for method in ("greedy", "optimal"):
        no_tasks = rebalance(p_lons, p_lats, [], [], [], method=method)
        assert no_tasks.task_index.tolist() == [-1, -1] and no_tasks.unassigned == 2
        all_closed = rebalance(p_lons, p_lats, t_lons, t_lats, [3], open_mask=[False])
        assert all_closed.unassigned == 2 and all_closed.total_m == 0.0


def test_bad_arguments():
    t_lons, t_lats = lonlat([(0, 0)])
    with pytest.raises(ValueError, match="method"):
        rebalance(t_lons, t_lats, t_lons, t_lats, [1], method="fast")
    with pytest.raises(ValueError, match="k must be"):
        rebalance(t_lons, t_lats, t_lons, t_lats, [1], k=0)
    with pytest.raises(ValueError, match="capacity"):
        rebalance(t_lons, t_lats, t_lons, t_lats, [1, 2])
    with pytest.raises(ValueError, match="capacity"):
        rebalance(t_lons, t_lats, t_lons, t_lats, [-1])
    with pytest.raises(ValueError, match="same length"):
        rebalance([13.4, 13.5], [52.5], t_lons, t_lats, [1])
    with pytest.raises(ValueError, match="finite"):
        rebalance([np.nan], [52.5], t_lons, t_lats, [1])


def test_clustered_crowd_medium_instance():
    # 300 people crowding two entrances, 80 tasks of capacity 4 (320 places).
    rng = np.random.default_rng(3)
    t_lons, t_lats = lonlat(rng.uniform(-400, 400, (80, 2)))
    crowd = np.concatenate(
        [rng.normal((-300, 0), 40, (150, 2)), rng.normal((250, 200), 60, (150, 2))]
    )
    p_lons, p_lats = lonlat(crowd)
    capacity = np.full(80, 4)
    greedy = rebalance(p_lons, p_lats, t_lons, t_lats, capacity, method="greedy")
    sparse = rebalance(p_lons, p_lats, t_lons, t_lats, capacity, k=8)
    exact = rebalance(p_lons, p_lats, t_lons, t_lats, capacity, k=80)
    for a in (greedy, sparse, exact):
        check_assignment(a, p_lons, p_lats, t_lons, t_lats, capacity)
        assert a.unassigned == 0
    brute = dense_optimum_m(p_lons, p_lats, t_lons, t_lats, capacity)
    assert exact.total_m == pytest.approx(brute, abs=300 * COST_UNIT_M)
    assert brute - 1e-6 <= sparse.total_m <= greedy.total_m + 300 * COST_UNIT_M
    assert exact.total_m < greedy.total_m


# --- rebalance: properties ---------------------------------------------------------------


@st.composite
def instances(draw):
    n_tasks = draw(st.integers(1, 10))
    n_people = draw(st.integers(0, 30))
    coord = st.floats(-500, 500, allow_nan=False)
    tasks = draw(st.lists(st.tuples(coord, coord), min_size=n_tasks, max_size=n_tasks))
    people = draw(st.lists(st.tuples(coord, coord), min_size=n_people, max_size=n_people))
    capacity = draw(st.lists(st.integers(1, 4), min_size=n_tasks, max_size=n_tasks))
    open_mask = draw(st.none() | st.lists(st.booleans(), min_size=n_tasks, max_size=n_tasks))
    k = draw(st.integers(1, 12))
    t_lons, t_lats = lonlat(tasks)
    p_lons, p_lats = lonlat(people) if people else (np.empty(0), np.empty(0))
    return p_lons, p_lats, t_lons, t_lats, np.asarray(capacity), open_mask, k


@PROPERTY
@given(instances())
def test_rebalance_respects_capacity_and_is_optimal_with_every_arc(case):
    p_lons, p_lats, t_lons, t_lats, capacity, open_mask, k = case
    n = len(p_lons)
    greedy = rebalance(
        p_lons, p_lats, t_lons, t_lats, capacity, k=k, method="greedy", open_mask=open_mask
    )
    best = rebalance(p_lons, p_lats, t_lons, t_lats, capacity, k=k, open_mask=open_mask)
    for a in (greedy, best):
        check_assignment(a, p_lons, p_lats, t_lons, t_lats, capacity, open_mask)
    # Integer costs: each rounded by half a unit, so two totals may swap by a unit each.
    tolerance = COST_UNIT_M * n + 1e-6
    assert best.total_m <= greedy.total_m + tolerance
    usable = capacity if open_mask is None else np.where(open_mask, capacity, 0)
    brute = dense_optimum_m(p_lons, p_lats, t_lons, t_lats, usable)
    assert best.total_m >= brute - tolerance
    if k >= len(t_lons):
        assert best.total_m == pytest.approx(brute, abs=tolerance)


# --- TaskIndex.nearest_free ----------------------------------------------------------------


def make_index(xy_m, capacity, load=None, open_mask=None, ids=None):
    lons, lats = lonlat(xy_m)
    ids = np.arange(100, 100 + len(lons)) if ids is None else ids
    return TaskIndex.from_arrays(ids, lons, lats, capacity, load, open_mask)


def test_nearest_free_skips_full_and_closed_tasks():
    index = make_index(
        [(0, 10), (0, 20), (0, 30), (0, 40)],
        capacity=[2, 2, 2, 2],
        load=[2, 0, 0, 1],
        open_mask=[True, False, True, True],
    )
    me = lonlat([(0, 0)])
    task_id, d = index.nearest_free(me[0][0], me[1][0])
    assert task_id == 102  # 100 is full, 101 closed
    assert d == pytest.approx(30, rel=2e-3)
    assert index.has_room(102) and not index.has_room(100) and not index.has_room(101)
    assert not index.is_open(101) and index.is_open(100)


def test_nearest_free_widens_past_a_full_neighbourhood():
    # 400 full tasks around the participant (past the widest k-d query), one free far away.
    rng = np.random.default_rng(1)
    near = rng.uniform(-100, 100, (400, 2))
    xy = np.vstack([near, [(900, 900), (-950, 950)]])
    capacity = np.full(len(xy), 3)
    load = np.full(len(xy), 3)
    load[-1] = 2  # only the last has room
    index = make_index(xy, capacity, load)
    me = lonlat([(0, 0)])
    for k in (1, 16):
        task_id, d = index.nearest_free(me[0][0], me[1][0], k=k)
        assert task_id == 100 + len(xy) - 1
        assert d == pytest.approx(float(np.hypot(950, 950)), rel=5e-3)
    assert index.claim(task_id) and index.nearest_free(me[0][0], me[1][0]) is None


def test_claim_release_and_closing_keep_the_index_in_step():
    index = make_index([(0, 0), (0, 100)], capacity=[1, 1])
    me = lonlat([(0, 0)])
    assert index.nearest_free(me[0][0], me[1][0])[0] == 100
    assert index.claim(100) is True
    assert index.claim(100) is False  # full: no change
    assert index.load.tolist() == [1, 0]
    assert index.nearest_free(me[0][0], me[1][0])[0] == 101
    index.set_open(101, False)
    assert index.claim(101) is False
    assert index.nearest_free(me[0][0], me[1][0]) is None
    assert index.release(100) is True and index.release(100) is False
    assert index.load.tolist() == [0, 0]
    assert index.nearest_free(me[0][0], me[1][0])[0] == 100
    index.set_open(101, True)
    assert 101 in index and 7 not in index and len(index) == 2
    with pytest.raises(KeyError, match="unknown task id 7"):
        index.claim(7)


def test_task_index_validates_its_arrays():
    with pytest.raises(ValueError, match="unique"):
        make_index([(0, 0), (1, 1)], capacity=[1, 1], ids=[5, 5])
    with pytest.raises(ValueError, match="load"):
        make_index([(0, 0)], capacity=[1], load=[-1])
    with pytest.raises(ValueError, match="whole numbers"):
        make_index([(0, 0)], capacity=[1.5])
    with pytest.raises(ValueError, match="open_mask"):
        make_index([(0, 0)], capacity=[1], open_mask=[True, False])
    empty = TaskIndex.from_arrays([], [], [], [])
    assert len(empty) == 0 and empty.nearest_free(13.4, 52.5) is None


@PROPERTY
@given(
    tasks=st.lists(
        st.tuples(st.floats(-800, 800), st.floats(-800, 800), st.integers(0, 3), st.booleans()),
        min_size=1,
        max_size=16,
    ),
    me=st.tuples(st.floats(-1000, 1000), st.floats(-1000, 1000)),
    loads=st.lists(st.integers(0, 3), min_size=16, max_size=16),
    k=st.integers(1, 16),
)
def test_nearest_free_is_the_nearest_task_with_room(tasks, me, loads, k):
    xy = [(x, y) for x, y, _, _ in tasks]
    capacity = np.array([c for _, _, c, _ in tasks])
    open_mask = np.array([o for _, _, _, o in tasks])
    load = np.minimum(loads[: len(tasks)], capacity)
    index = make_index(xy, capacity, load, open_mask)
    lon, lat = (float(v[0]) for v in lonlat([me]))
    room = open_mask & (load < capacity)
    found = index.nearest_free(lon, lat, k=k)
    if not room.any():
        assert found is None
        return
    d_all = haversine_m(lon, lat, index.lons, index.lats)
    best = float(d_all[room].min())
    task_id, d = found
    assert room[task_id - 100]
    assert d == pytest.approx(d_all[task_id - 100], rel=1e-12)
    if k >= len(tasks):  # every task was a candidate: exactly the nearest
        assert d == pytest.approx(best, rel=1e-12, abs=1e-9)
    else:  # the k-d tree ranks in the projection; it agrees with the sphere within 0.5 %
        assert d <= best * 1.005 + 1e-6


# --- match_one -----------------------------------------------------------------------------


def test_match_one_keeps_the_task_being_walked_to_while_open():
    index = make_index([(0, 0), (0, 500)], capacity=[1, 1], load=[0, 1])
    me = lonlat([(0, 10)])
    lon, lat = me[0][0], me[1][0]
    # Task 101 is far and full, but this participant is the one counted in it.
    task_id, d = match_one(index, lon, lat, current_task_id=101)
    assert task_id == 101 and d == pytest.approx(490, rel=2e-3)
    # Without a current task (or an unknown one) they get the nearest with room.
    assert match_one(index, lon, lat)[0] == 100
    assert match_one(index, lon, lat, current_task_id=999)[0] == 100


def test_match_one_rematches_when_the_task_closes_or_is_full_without_them():
    index = make_index([(0, 0), (0, 500)], capacity=[1, 2], load=[0, 2])
    lon, lat = (float(v[0]) for v in lonlat([(0, 480)]))
    assert match_one(index, lon, lat, current_task_id=101)[0] == 101
    # Not yet counted, and the task filled up meanwhile: re-matched.
    assert match_one(index, lon, lat, current_task_id=101, counted=False)[0] == 100
    # Capacity cut below the load (the organizer edited the task): full without them.
    index.set_capacity(101, 1)
    assert match_one(index, lon, lat, current_task_id=101)[0] == 100
    index.set_capacity(101, 2)
    assert not index.has_room(101)
    index.set_capacity(101, 3)
    assert index.has_room(101)
    with pytest.raises(ValueError, match="capacity"):
        index.set_capacity(101, -1)
    # Closed (or removed): re-matched; and nothing anywhere: None.
    index.set_open(101, False)
    assert match_one(index, lon, lat, current_task_id=101)[0] == 100
    index.claim(100)
    assert match_one(index, lon, lat, current_task_id=101) is None
