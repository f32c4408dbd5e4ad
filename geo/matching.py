"""Participant-to-task matching by walking distance (metres) under per-task capacity."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ortools.graph.python import min_cost_flow
from scipy.spatial import cKDTree

from geo.distance import haversine_m
from geo.projection import LocalProjection

__all__ = ["Assignment", "TaskIndex", "match_one", "rebalance"]

# Walking distance is estimated as the straight-line (great-circle, ``haversine_m``) distance
# in metres: footpaths are unknown here, and inside a zone of a few kilometres the detour
# factor is roughly the same for every candidate, so the ranking is what matters. Nearest
# neighbours are searched with a k-d tree in a ``LocalProjection`` (metres) centred on the
# tasks; the flow's costs, ``TaskIndex``'s final pick and every reported distance are
# great-circle metres. Positions are expected within a few km of the tasks.

#: Unit of the integer arc costs of the min-cost flow, metres (centimetres): each cost is
#: rounded by at most half of it, so a flow optimum is within this much per participant of
#: the real-valued optimum.
COST_UNIT_M = 0.01
#: Beyond this many neighbours a search that found only full tasks stops widening the k-d
#: tree query and scans every task with room instead (one vectorized pass).
_SCAN_AFTER_K = 256
#: Relative disagreement allowed between projected and great-circle distances when picking
#: the nearest: the local projection's scale is the ellipsoid's, the distance the sphere's
#: (at most 0.34 % apart), plus the projection's own distortion a few km from its centre.
_PROJECTION_SLACK = 0.01
#: Neighbours asked for in the greedy's later rounds (doubling from ``k`` up to this).
_ROUND_K_MAX = 16


def _as_float(values, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=float).reshape(-1)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite numbers")
    return a


def _as_count(values, name: str, n: int) -> np.ndarray:
    a = np.asarray(values).reshape(-1)
    if a.size != n:
        raise ValueError(f"{name} has {a.size} values, expected {n}")
    if (
        a.size
        and not np.issubdtype(a.dtype, np.integer)
        and not (np.all(np.isfinite(a)) and np.all(a == np.round(a)))
    ):
        raise ValueError(f"{name} must be whole numbers")
    a = a.astype(np.int64)
    if (a < 0).any():
        raise ValueError(f"{name} must be >= 0")
    return a


def _open_mask(open_mask, n: int) -> np.ndarray:
    if open_mask is None:
        return np.ones(n, dtype=bool)
    m = np.asarray(open_mask, dtype=bool).reshape(-1)
    if m.size != n:
        raise ValueError(f"open_mask has {m.size} values, expected {n}")
    return m.copy()


def _projection(lons: np.ndarray, lats: np.ndarray) -> LocalProjection:
    if lons.size == 0:
        return LocalProjection(0.0, 0.0)
    return LocalProjection((lons.min() + lons.max()) / 2.0, (lats.min() + lats.max()) / 2.0)


def _xy(proj: LocalProjection, lons, lats) -> np.ndarray:
    x, y = proj.forward_xy(lons, lats)
    return np.column_stack([np.reshape(x, -1), np.reshape(y, -1)])


class TaskIndex:
    """The tasks of one mob in a k-d tree, with their capacity and current load.

    ``task_ids`` are the callers' ids (ints), ``lons``/``lats`` degrees (EPSG:4326),
    ``capacity`` and ``load`` whole numbers of people (``load`` = how many are assigned now),
    ``open_mask`` whether a task still takes people (default: all open). A task has room when
    it is open and ``load < capacity``. The index is an in-process helper rebuilt from the
    database, which stays the truth for atomic claims; :meth:`claim`, :meth:`release`,
    :meth:`set_open` and :meth:`set_capacity` keep this copy in step. A removed task is
    closed (or the index rebuilt). Positions are projected with a :class:`LocalProjection`
    centred on the tasks, so queries are meant for points within a few km of them.

    >>> index = TaskIndex.from_arrays(
    ...     task_ids=[10, 11, 12],
    ...     lons=[13.4000, 13.4010, 13.4030],  # about 68 m of longitude apart at 52.5 N
    ...     lats=[52.5, 52.5, 52.5],
    ...     capacity=[1, 2, 2],
    ...     load=[1, 0, 0],
    ...     open_mask=[True, True, True],
    ... )
    >>> task_id, d = index.nearest_free(13.4000, 52.5)  # task 10 is full
    >>> task_id, round(d)
    (11, 68)
    >>> index.claim(11), index.claim(11), index.claim(11)  # the third finds it full
    (True, True, False)
    >>> index.nearest_free(13.4000, 52.5)[0]
    12
    >>> index.set_open(12, False)
    >>> index.nearest_free(13.4000, 52.5) is None
    True
    >>> index.release(10), index.nearest_free(13.4000, 52.5)[0]
    (True, 10)
    """

    def __init__(self, task_ids, lons, lats, capacity, load=None, open_mask=None) -> None:
        self.task_ids = np.asarray(task_ids).reshape(-1).astype(np.int64)
        n = self.task_ids.size
        self.lons = _as_float(lons, "lons")
        self.lats = _as_float(lats, "lats")
        if self.lons.size != n or self.lats.size != n:
            raise ValueError("task_ids, lons and lats must have the same length")
        self.capacity = _as_count(capacity, "capacity", n)
        self.load = np.zeros(n, dtype=np.int64) if load is None else _as_count(load, "load", n)
        self.open_mask = _open_mask(open_mask, n)
        self._pos = {int(t): i for i, t in enumerate(self.task_ids.tolist())}
        if len(self._pos) != n:
            raise ValueError("task_ids must be unique")
        self.projection = _projection(self.lons, self.lats)
        self._xy = _xy(self.projection, self.lons, self.lats)
        self._tree = cKDTree(self._xy) if n else None
        self._free = self.open_mask & (self.load < self.capacity)
        self._n_free = int(self._free.sum())

    @classmethod
    def from_arrays(cls, task_ids, lons, lats, capacity, load=None, open_mask=None) -> TaskIndex:
        """Build an index from parallel arrays (see the class); ``load`` defaults to zeros."""
        return cls(task_ids, lons, lats, capacity, load=load, open_mask=open_mask)

    def __len__(self) -> int:
        return int(self.task_ids.size)

    def __contains__(self, task_id) -> bool:
        return int(task_id) in self._pos

    def __repr__(self) -> str:
        return f"<TaskIndex {len(self)} tasks, {self._n_free} with room>"

    def _index(self, task_id) -> int:
        try:
            return self._pos[int(task_id)]
        except KeyError:
            raise KeyError(f"unknown task id {task_id}") from None

    def _refresh(self, i: int) -> None:
        free = bool(self.open_mask[i] and self.load[i] < self.capacity[i])
        if free != self._free[i]:
            self._free[i] = free
            self._n_free += 1 if free else -1

    def has_room(self, task_id) -> bool:
        """Whether the task is open and below its capacity."""
        return bool(self._free[self._index(task_id)])

    def is_open(self, task_id) -> bool:
        """Whether the task still takes people (not closed or removed)."""
        return bool(self.open_mask[self._index(task_id)])

    def distance_m(self, task_id, lon: float, lat: float) -> float:
        """Great-circle distance in metres from ``(lon, lat)`` to the task."""
        i = self._index(task_id)
        return float(haversine_m(lon, lat, self.lons[i], self.lats[i]))

    def claim(self, task_id) -> bool:
        """Count one more person in the task; False (and no change) when full or closed."""
        i = self._index(task_id)
        if not self._free[i]:
            return False
        self.load[i] += 1
        self._refresh(i)
        return True

    def release(self, task_id) -> bool:
        """Count one person fewer in the task; False (and no change) when its load is 0."""
        i = self._index(task_id)
        if self.load[i] <= 0:
            return False
        self.load[i] -= 1
        self._refresh(i)
        return True

    def set_open(self, task_id, is_open: bool) -> None:
        """Open or close a task (a closed or removed task is never matched)."""
        i = self._index(task_id)
        self.open_mask[i] = bool(is_open)
        self._refresh(i)

    def set_capacity(self, task_id, capacity: int) -> None:
        """Change a task's capacity (people); a load above it stays until people move."""
        if int(capacity) < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        i = self._index(task_id)
        self.capacity[i] = int(capacity)
        self._refresh(i)

    def nearest(self, lon: float, lat: float, k: int) -> list[int]:
        """Ids of the ``k`` tasks nearest to ``(lon, lat)``, nearest first, whatever their
        room (for a caller whose database decides which have room); fewer when the index
        holds fewer.

        >>> index = TaskIndex.from_arrays([7, 8, 9], [13.400, 13.402, 13.401], [52.5] * 3, [1] * 3)
        >>> index.nearest(13.4021, 52.5, 2)
        [8, 9]
        """
        n = len(self)
        kk = min(int(k), n)
        if kk <= 0:
            return []
        _dist, idx = self._tree.query(_xy(self.projection, lon, lat)[0], k=kk)
        return self.task_ids[np.atleast_1d(idx)].tolist()

    def nearest_free(self, lon: float, lat: float, k: int = 16) -> tuple[int, float] | None:
        """The nearest task with room as ``(task_id, distance_m)``; None when none has room.

        Asks the k-d tree for the ``k`` nearest tasks, widening ``k`` (×4) while all of them
        are full or closed, and past a few hundred scans every task with room. Among the
        candidates with room the smallest great-circle distance (metres) wins.
        """
        if self._n_free == 0:
            return None
        n = len(self)
        kk = max(1, min(int(k), n))
        xy = _xy(self.projection, lon, lat)[0]
        while True:
            dist, idx = self._tree.query(xy, k=kk)
            dist, idx = np.atleast_1d(dist), np.atleast_1d(idx)
            room = self._free[idx]
            if room.any():
                cand, dist = idx[room], dist[room]
                break
            if kk >= n or kk >= _SCAN_AFTER_K or self._n_free <= kk:
                cand = np.flatnonzero(self._free)
                dist = np.hypot(self._xy[cand, 0] - xy[0], self._xy[cand, 1] - xy[1])
                break
            kk = min(4 * kk, n)
        # Only tasks about as near in the projection can be the nearest on the sphere.
        cand = cand[dist <= dist.min() * (1.0 + _PROJECTION_SLACK) + 1.0]
        d = haversine_m(lon, lat, self.lons[cand], self.lats[cand])
        j = int(np.argmin(d))
        return int(self.task_ids[cand[j]]), float(d[j])


def match_one(
    index: TaskIndex,
    lon: float,
    lat: float,
    current_task_id=None,
    *,
    counted: bool = True,
) -> tuple[int, float] | None:
    """The task a participant at ``(lon, lat)`` should walk to, as ``(task_id, distance_m)``.

    A participant keeps ``current_task_id`` while it is open and they fit in it: with
    ``counted=True`` (they are already in its load) while ``load <= capacity``, otherwise while
    ``load < capacity``. When it closed, was removed, or is full without them, they get the
    nearest task with room (:meth:`TaskIndex.nearest_free`). None when no task has room.
    Nothing is claimed here: the caller releases the old task and claims the new one.

    >>> index = TaskIndex.from_arrays([1, 2], [13.400, 13.402], [52.5, 52.5], [1, 1], [1, 0])
    >>> match_one(index, 13.4015, 52.5, current_task_id=1)[0]  # walking to 1: keeps it
    1
    >>> index.set_open(1, False)
    >>> match_one(index, 13.4015, 52.5, current_task_id=1)[0]  # 1 closed: re-matched
    2
    >>> match_one(index, 13.4015, 52.5, current_task_id=2, counted=False)[0]  # has room
    2
    """
    if current_task_id is not None and current_task_id in index:
        i = index._index(current_task_id)
        limit = index.capacity[i] if counted else index.capacity[i] - 1
        if index.open_mask[i] and index.load[i] <= limit:
            return int(index.task_ids[i]), index.distance_m(current_task_id, lon, lat)
    return index.nearest_free(lon, lat)


@dataclass(frozen=True)
class Assignment:
    """Result of :func:`rebalance`.

    ``task_index[i]`` is the position (in the task arrays given) of participant ``i``'s task,
    -1 when unassigned; ``distance_m[i]`` their great-circle walk in metres (NaN when
    unassigned); ``total_m`` the sum over the assigned; ``unassigned`` how many have no task;
    ``method`` "optimal" or "greedy"; ``seconds`` the wall time it took.
    """

    task_index: np.ndarray
    distance_m: np.ndarray
    total_m: float
    unassigned: int
    method: str
    seconds: float

    def loads(self, n_tasks: int) -> np.ndarray:
        """People per task (length ``n_tasks``)."""
        return np.bincount(self.task_index[self.task_index >= 0], minlength=n_tasks)


class _Candidates:
    """Open tasks with capacity, their k-d tree, and each participant's nearest ones."""

    def __init__(self, p_lons, p_lats, t_lons, t_lats, capacity, open_mask, k: int) -> None:
        self.p_lons = _as_float(p_lons, "p_lons")
        self.p_lats = _as_float(p_lats, "p_lats")
        if self.p_lons.size != self.p_lats.size:
            raise ValueError("p_lons and p_lats must have the same length")
        t_lons = _as_float(t_lons, "task_lons")
        t_lats = _as_float(t_lats, "task_lats")
        if t_lons.size != t_lats.size:
            raise ValueError("task_lons and task_lats must have the same length")
        cap = _as_count(capacity, "capacity", t_lons.size)
        usable = _open_mask(open_mask, t_lons.size) & (cap > 0)
        #: Positions (in the caller's task arrays) of the usable tasks.
        self.task_pos = np.flatnonzero(usable)
        self.t_lons = t_lons[self.task_pos]
        self.t_lats = t_lats[self.task_pos]
        self.cap = cap[self.task_pos]
        self.n_p = self.p_lons.size
        self.n_t = self.task_pos.size
        self.proj = _projection(self.t_lons, self.t_lats)
        self.t_xy = _xy(self.proj, self.t_lons, self.t_lats)
        self.p_xy = _xy(self.proj, self.p_lons, self.p_lats)
        self.tree = cKDTree(self.t_xy) if self.n_t else None
        self.k = max(1, min(int(k), self.n_t))
        #: Each participant's ``k`` nearest usable tasks (positions), nearest first.
        self.idx = (
            self.nearest(np.arange(self.n_p), None, self.k)
            if self.n_t and self.n_p
            else np.empty((self.n_p, 0), dtype=np.int64)
        )

    def nearest(self, people: np.ndarray, tasks: np.ndarray | None, k: int) -> np.ndarray:
        """The ``k`` nearest of ``tasks`` (usable-task positions; None = all) to each of
        ``people`` (one batched k-d tree query in the projection), each row nearest first."""
        tree = self.tree if tasks is None else cKDTree(self.t_xy[tasks])
        k = max(1, min(k, tree.n))
        _, idx = tree.query(self.p_xy[people], k=k, workers=-1)
        idx = idx.reshape(people.size, k)
        return idx if tasks is None else tasks[idx]

    def distance_m(self, people: np.ndarray, tasks: np.ndarray) -> np.ndarray:
        """Great-circle metres from ``people`` to ``tasks`` (positions, broadcast together)."""
        return haversine_m(
            self.p_lons[people], self.p_lats[people], self.t_lons[tasks], self.t_lats[tasks]
        )

    def result(self, assigned: np.ndarray, method: str, started: float) -> Assignment:
        """An :class:`Assignment` from usable-task positions (-1 = none) per participant."""
        ok = assigned >= 0
        task_index = np.full(self.n_p, -1, dtype=np.int64)
        task_index[ok] = self.task_pos[assigned[ok]]
        dist = np.full(self.n_p, np.nan)
        a = assigned[ok]
        dist[ok] = self.distance_m(np.flatnonzero(ok), a)
        return Assignment(
            task_index=task_index,
            distance_m=dist,
            total_m=float(dist[ok].sum()),
            unassigned=int(self.n_p - ok.sum()),
            method=method,
            seconds=time.perf_counter() - started,
        )


def _greedy(cands: _Candidates) -> np.ndarray:
    """Greedy assignment: nearest-first participants each take the nearest task with room.

    Runs in rounds of batched k-d tree queries: in order, each participant takes the nearest
    of its ``k`` candidates that still has room; those whose candidates all filled wait for
    the next round, which searches again (batched) among the tasks left with room, with ``k``
    doubled up to ``_ROUND_K_MAX``. Every round places at least its first participant. (So a
    participant whose candidates filled yields to the later ones of that round: one batched
    query per round instead of one query per such participant.)
    """
    assigned = np.full(cands.n_p, -1, dtype=np.int64)
    if cands.n_t == 0 or cands.n_p == 0:
        return assigned
    remaining = cands.cap.tolist()
    n_room = sum(1 for r in remaining if r > 0)
    everyone = np.arange(cands.n_p)
    order = np.argsort(cands.distance_m(everyone, cands.idx[:, 0]), kind="stable")
    pending, rows, k = order.tolist(), cands.idx[order].tolist(), cands.k
    out = [-1] * cands.n_p
    while pending and n_room:
        failed = []
        for p, row in zip(pending, rows, strict=True):
            for t in row:
                if remaining[t] > 0:
                    remaining[t] -= 1
                    if remaining[t] == 0:
                        n_room -= 1
                    out[p] = t
                    break
            else:
                failed.append(p)
        if not failed or not n_room:
            break
        k = max(k, min(2 * k, _ROUND_K_MAX))
        room = np.flatnonzero(np.asarray(remaining) > 0)
        pending = failed
        rows = cands.nearest(np.asarray(failed), room, k).tolist()
    assigned[:] = out
    return assigned


def _arcs(cands: _Candidates, seed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The participant → task arcs of :func:`_optimal`, as ``(participant, task, metres)``
    arrays (positions; each pair once): each participant's ``k`` nearest tasks, and for a
    participant that ``seed`` placed the ``k`` tasks nearest to its seed task, that one
    included. (``bench.matching --compare-scipy`` gives the same arcs to other solvers.)"""
    n_p, n_t = cands.n_p, cands.n_t
    k = cands.k
    placed = np.flatnonzero(seed >= 0)
    around = cands.tree.query(cands.t_xy, k=k, workers=-1)[1].reshape(n_t, k)
    around[:, 0] = np.arange(n_t)  # the task itself first, even among coincident tasks
    pairs = np.concatenate(
        [
            np.arange(n_p)[:, None] * n_t + cands.idx,
            placed[:, None] * n_t + around[seed[placed]],
        ],
        axis=None,
    )
    pairs.sort()
    pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])]
    p_tail, p_head = np.divmod(pairs, n_t)
    return p_tail, p_head, cands.distance_m(p_tail, p_head)


def _optimal(cands: _Candidates, seed: np.ndarray) -> np.ndarray:
    """Min-cost flow over each participant's nearest tasks and the tasks around its ``seed``.

    Arcs from participant ``p``: its ``k`` nearest tasks, and the ``k`` tasks nearest to its
    seed (greedy) task, that task included (:func:`_arcs`). Nodes: participants ``0..P-1``,
    tasks ``P..P+T-1``, source ``P+T``, sink ``P+T+1``. The seed arcs make the greedy
    assignment a feasible flow, so everyone it placed is placed here too, at a total cost no
    higher; the arcs around it let the flow improve on where the greedy sent people far from
    their nearest tasks (a crowd larger than the tasks around it).

    OR-Tools stays for this one call because scipy's exact alternatives on the same arcs are
    far slower: its sparse assignment (one column per capacity slot) and HiGHS on the
    transportation LP (docs/BENCHMARKS.md, ``bench.matching --compare-scipy``).
    """
    n_p, n_t = cands.n_p, cands.n_t
    n_flow = int((seed >= 0).sum())
    if n_flow == 0:
        return seed
    source, sink = n_p + n_t, n_p + n_t + 1
    p_tail, p_head, p_dist = _arcs(cands, seed)
    n_arcs = p_tail.size
    cost = np.rint(p_dist / COST_UNIT_M).astype(np.int64)
    tails = np.concatenate([p_tail, np.full(n_p, source), np.arange(n_p, n_p + n_t)]).astype(
        np.int32
    )
    heads = np.concatenate([p_head + n_p, np.arange(n_p), np.full(n_t, sink)]).astype(np.int32)
    caps = np.concatenate([np.ones(n_arcs + n_p, dtype=np.int64), cands.cap])
    costs = np.concatenate([cost, np.zeros(n_p + n_t, dtype=np.int64)])
    flow = min_cost_flow.SimpleMinCostFlow()
    arcs = flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    flow.set_nodes_supplies(
        np.array([source, sink], dtype=np.int32), np.array([n_flow, -n_flow], dtype=np.int64)
    )
    status = flow.solve()
    if status != flow.OPTIMAL:  # cannot happen: the seed is a feasible flow
        raise RuntimeError(f"min-cost flow failed with status {status}")
    used = np.asarray(flow.flows(np.asarray(arcs[:n_arcs], dtype=np.int32))) > 0
    assigned = np.full(n_p, -1, dtype=np.int64)
    assigned[p_tail[used]] = p_head[used]
    return assigned


def rebalance(
    p_lons,
    p_lats,
    task_lons,
    task_lats,
    capacity,
    *,
    k: int = 8,
    method: str = "optimal",
    open_mask=None,
) -> Assignment:
    """Assign participants to tasks minimizing total walking distance (metres) under capacity.

    Participants at ``(p_lons, p_lats)`` and tasks at ``(task_lons, task_lats)`` are degrees;
    ``capacity`` whole numbers of people per task; closed tasks (``open_mask`` False) and
    tasks of capacity 0 take nobody. Nobody is left unassigned while the open capacity
    suffices; otherwise exactly ``participants - capacity`` are.

    ``method="greedy"``: participants in order of the distance to their nearest task
    (shortest first) each take the nearest task with room among their ``k`` nearest (one
    batched k-d tree query); those whose ``k`` nearest all filled search again, in a batch,
    among the tasks still with room (see ``_greedy``).

    ``k`` (default 8) is how many nearest tasks each participant is offered at first.

    ``method="optimal"``: the greedy result, then a min-cost flow (OR-Tools
    ``SimpleMinCostFlow``) over a sparse graph: source → each participant (capacity 1),
    participant → each of its ``k`` nearest tasks and the ``k`` tasks nearest to its greedy
    task, that one included (capacity 1, cost = great-circle metres in integer units of
    ``COST_UNIT_M``), task → sink (its capacity). It places as many people as the greedy,
    never at a higher total (up to cost rounding), and is the exact optimum when ``k`` is at
    least the number of tasks; with a small ``k`` it is the optimum over those arcs only.
    ``seconds`` includes the greedy.

    >>> proj = LocalProjection(13.4, 52.5)
    >>> t_lons, t_lats = proj.inverse_xy([0.0, 0.0], [0.0, 100.0])  # tasks 100 m apart
    >>> p_lons, p_lats = proj.inverse_xy([0.0, 0.0], [10.0, -50.0])
    >>> greedy = rebalance(p_lons, p_lats, t_lons, t_lats, [1, 1], method="greedy")
    >>> greedy.task_index.tolist(), round(greedy.total_m)  # 10 m + 150 m
    ([0, 1], 160)
    >>> best = rebalance(p_lons, p_lats, t_lons, t_lats, [1, 1])
    >>> best.task_index.tolist(), round(best.total_m), best.unassigned  # 90 m + 50 m
    ([1, 0], 140, 0)
    """
    if method not in ("optimal", "greedy"):
        raise ValueError(f'method must be "optimal" or "greedy", got {method!r}')
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    started = time.perf_counter()
    cands = _Candidates(p_lons, p_lats, task_lons, task_lats, capacity, open_mask, k)
    assigned = _greedy(cands)
    if method == "optimal":
        assigned = _optimal(cands, assigned)
    return cands.result(assigned, method, started)
