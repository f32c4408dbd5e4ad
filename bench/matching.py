"""Participant-to-task matching: one join's match_one latency, and the pre-GO re-balance.

Usage: .venv/bin/python -m bench.matching [--write]   (write docs/BENCHMARKS.md's section)
       [--calls 10000] [--k 8] [--repeat 3] [--seed 7] [--compare-scipy]

A 2 km × 2 km zone in Berlin; tasks spread over it (uniform, jittered grid); participants
clustered around four entrances (60 %) plus uniform noise (40 %). Measures:

(a) ``match_one`` at 10,000 tasks about 60 % full (a third of them full), 10,000 calls from
    participants' positions, p50/p99 per call;
(b) ``rebalance`` optimal and greedy for 10,000 participants over 2,000 tasks of capacity 5
    and 50,000 over 10,000 of capacity 5 (capacity exactly equals the crowd), best of
    ``--repeat`` runs, with total walking distance and the optimal/greedy ratio;
(c) with ``--compare-scipy``, why ``rebalance`` keeps OR-Tools: its min-cost flow against
    scipy's exact solvers given the same arcs and the same greedy seed (solver time only):
    HiGHS on the transportation LP (``scipy.optimize.linprog``) on (b)'s first instance,
    and also the sparse assignment (``min_weight_full_bipartite_matching``, one column per
    capacity slot) on a smaller one, ``SLOT_CASE``, as it takes minutes at (b)'s sizes.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy import sparse
from scipy.optimize import linprog
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from bench.common import git_revision, machine, percentiles_ms, write_section
from geo import matching
from geo.matching import TaskIndex, match_one, rebalance
from geo.projection import LocalProjection

CENTRE = (13.4050, 52.5200)
SIDE_M = 2000.0
ENTRANCES_M = [(-900.0, -300.0), (200.0, 950.0), (950.0, 100.0), (-200.0, -950.0)]
TARGET_ONE_MS = 1.0
CASES = [(10_000, 2_000, 5, 1.0), (50_000, 10_000, 5, 10.0)]
#: A much denser graph for the first case, to tell how far k's flow is from the optimum.
REFERENCE_K = 256
#: (participants, tasks, capacity) for the slot-replicated sparse assignment (--compare-scipy).
SLOT_CASE = (2_000, 400, 5)


def progress(msg: str) -> None:
    print(f"[bench.matching] {msg}", file=sys.stderr, flush=True)


def zone_instance(n_people: int, n_tasks: int, rng: np.random.Generator):
    """(p_lons, p_lats, t_lons, t_lats): tasks on a jittered grid, people near entrances."""
    proj = LocalProjection(*CENTRE)
    half = SIDE_M / 2
    side = int(np.ceil(np.sqrt(n_tasks)))
    step = SIDE_M / side
    gx, gy = np.meshgrid(np.arange(side), np.arange(side))
    tx = (gx.ravel()[:n_tasks] + 0.5) * step - half + rng.uniform(-0.3, 0.3, n_tasks) * step
    ty = (gy.ravel()[:n_tasks] + 0.5) * step - half + rng.uniform(-0.3, 0.3, n_tasks) * step
    n_crowd = int(n_people * 0.6)
    which = rng.integers(len(ENTRANCES_M), size=n_crowd)
    ent = np.asarray(ENTRANCES_M)[which]
    cx = ent[:, 0] + rng.normal(0, 120, n_crowd)
    cy = ent[:, 1] + rng.normal(0, 120, n_crowd)
    ux = rng.uniform(-half, half, n_people - n_crowd)
    uy = rng.uniform(-half, half, n_people - n_crowd)
    px = np.clip(np.concatenate([cx, ux]), -half - 100, half + 100)
    py = np.clip(np.concatenate([cy, uy]), -half - 100, half + 100)
    order = rng.permutation(n_people)
    p_lons, p_lats = proj.inverse_xy(px[order], py[order])
    t_lons, t_lats = proj.inverse_xy(tx, ty)
    return p_lons, p_lats, t_lons, t_lats


def bench_match_one(calls: int, rng: np.random.Generator) -> dict:
    n_tasks, cap = 10_000, 5
    p_lons, p_lats, t_lons, t_lats = zone_instance(calls, n_tasks, rng)
    capacity = np.full(n_tasks, cap)
    # Realistic mid-gathering loads: tasks near the entrances fill first.
    proj = LocalProjection(*CENTRE)
    tx, ty = proj.forward_xy(t_lons, t_lats)
    near = np.min([np.hypot(tx - ex, ty - ey) for ex, ey in ENTRANCES_M], axis=0)
    load = np.where(near < 450, cap, rng.integers(0, cap + 1, n_tasks))
    open_mask = rng.random(n_tasks) > 0.02
    ids = np.arange(n_tasks) + 1000
    index = TaskIndex.from_arrays(ids, t_lons, t_lats, capacity, load, open_mask)
    full_share = float(np.mean(~(open_mask & (load < capacity))))
    current = rng.integers(1000, 1000 + n_tasks, calls)
    has_current = rng.random(calls) < 0.3
    samples = []
    for i in range(calls):
        cur = int(current[i]) if has_current[i] else None
        t0 = time.perf_counter()
        match_one(index, float(p_lons[i]), float(p_lats[i]), cur)
        samples.append(time.perf_counter() - t0)
    nearest = []
    for i in range(calls):
        t0 = time.perf_counter()
        index.nearest_free(float(p_lons[i]), float(p_lats[i]))
        nearest.append(time.perf_counter() - t0)
    return {
        "tasks": n_tasks,
        "calls": calls,
        "full_share": full_share,
        "match_one": percentiles_ms(samples),
        "nearest_free": percentiles_ms(nearest),
    }


def bench_rebalance(n_people, n_tasks, cap, k, repeat, rng, reference=False) -> dict:
    p_lons, p_lats, t_lons, t_lats = zone_instance(n_people, n_tasks, rng)
    capacity = np.full(n_tasks, cap)
    out = {"people": n_people, "tasks": n_tasks, "cap": cap, "reference": None}
    out["instance"], out["capacity"] = (p_lons, p_lats, t_lons, t_lats), capacity
    if reference:
        progress(f"rebalance reference (k = {REFERENCE_K}) {n_people:,} over {n_tasks:,}")
        out["reference"] = rebalance(p_lons, p_lats, t_lons, t_lats, capacity, k=REFERENCE_K)
    for method in ("greedy", "optimal"):
        runs = []
        for r in range(repeat):
            progress(f"rebalance {method} {n_people:,} over {n_tasks:,} (run {r + 1}/{repeat})")
            a = rebalance(p_lons, p_lats, t_lons, t_lats, capacity, k=k, method=method)
            loads = a.loads(n_tasks)
            assert (loads <= capacity).all() and a.unassigned == max(0, n_people - cap * n_tasks)
            runs.append(a)
        out[method] = runs[-1]  # the result is deterministic; the times vary
        out[f"{method}_s"] = float(np.median([a.seconds for a in runs]))
        out[f"{method}_max_s"] = max(a.seconds for a in runs)
    return out


def solve_ortools(cands, seed) -> np.ndarray:
    """geo.matching's own min-cost flow (OR-Tools), as ``rebalance`` runs it."""
    return matching._optimal(cands, seed)


def solve_linprog(cands, seed) -> np.ndarray:
    """The same arcs as a transportation LP for HiGHS (scipy.optimize.linprog): one variable
    per arc in [0, 1], each participant at most once (exactly once when the seed placed
    everyone), each task at most its capacity (exactly, when the seed filled every place).
    The constraint matrix is totally unimodular, so the optimal vertex is whole."""
    tail, head, dist = matching._arcs(cands, seed)
    m, everyone = tail.size, bool((seed >= 0).all())
    per_p = sparse.csr_array((np.ones(m), (tail, np.arange(m))), shape=(cands.n_p, m))
    per_t = sparse.csr_array((np.ones(m), (head, np.arange(m))), shape=(cands.n_t, m))
    ones, cap = np.ones(cands.n_p), cands.cap.astype(float)
    if everyone:
        res = linprog(dist, A_ub=per_t, b_ub=cap, A_eq=per_p, b_eq=ones, bounds=(0, 1))
    else:  # the greedy fills every place when people outnumber them
        res = linprog(dist, A_ub=per_p, b_ub=ones, A_eq=per_t, b_eq=cap, bounds=(0, 1))
    if res.status != 0:
        raise RuntimeError(f"linprog: {res.message}")
    used = res.x > 0.5
    out = np.full(cands.n_p, -1, dtype=np.int64)
    out[tail[used]] = head[used]
    return out


def solve_slots(cands, seed) -> np.ndarray:
    """The same arcs as a sparse assignment (scipy's LAPJVsp): task ``t`` becomes
    min(capacity, its arcs) columns, every arc one edge to each of them (weights + 1 m, as
    the solver wants no zero; a full matching has a fixed size, so the optimum is the same)."""
    tail, head, dist = matching._arcs(cands, seed)
    deg = np.bincount(head, minlength=cands.n_t)
    slots = np.minimum(cands.cap, deg)
    first = np.concatenate([[0], np.cumsum(slots)])
    reps = slots[head]
    offset = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
    graph = sparse.csr_array(
        (
            np.repeat(dist + 1.0, reps),
            (np.repeat(tail, reps), np.repeat(first[head], reps) + offset),
        ),
        shape=(cands.n_p, int(first[-1])),
    )
    rows, cols = min_weight_full_bipartite_matching(graph)
    out = np.full(cands.n_p, -1, dtype=np.int64)
    out[rows] = np.repeat(np.arange(cands.n_t), slots)[cols]
    return out


SOLVERS = {
    "OR-Tools min-cost flow (in use)": solve_ortools,
    "scipy linprog (HiGHS), transportation LP": solve_linprog,
    "scipy min_weight_full_bipartite_matching, a column per slot": solve_slots,
}


def compare_solvers(p_lons, p_lats, t_lons, t_lats, capacity, k, repeat, names) -> list[dict]:
    """Each solver on the same candidates, arcs and greedy seed; OR-Tools best of ``repeat``
    (median), the scipy ones once (they are tens of times slower)."""
    cands = matching._Candidates(p_lons, p_lats, t_lons, t_lats, capacity, None, k)
    seed = matching._greedy(cands)
    rows = []
    for name in names:
        runs = []
        for _ in range(repeat if SOLVERS[name] is solve_ortools else 1):
            progress(f"compare: {name}, {cands.n_p:,} over {cands.n_t:,}")
            t0 = time.perf_counter()
            assigned = SOLVERS[name](cands, seed)
            runs.append(time.perf_counter() - t0)
        a = cands.result(assigned, name, time.perf_counter())
        assert (a.loads(cands.n_t) <= cands.cap).all()
        rows.append(
            {
                "people": cands.n_p,
                "tasks": cands.n_t,
                "cap": int(cands.cap[0]),
                "solver": name,
                "s": float(np.median(runs)),
                "runs": len(runs),
                "total_m": a.total_m,
                "unassigned": a.unassigned,
            }
        )
    return rows


def markdown(one: dict, runs: list[dict], k: int, repeat: int, compare=None) -> str:
    m, nf = one["match_one"], one["nearest_free"]
    lines = [
        "## Participant→task matching",
        "",
        f"Machine: {machine()}; revision {git_revision()}; "
        "`.venv/bin/python -m bench.matching"
        + (" --compare-scipy" if compare else "")
        + " --write`.",
        "",
        "Zone 2 km × 2 km; tasks on a jittered grid; participants 60 % around four entrances "
        "(σ 120 m), 40 % uniform. Walking distance = great-circle metres.",
        "",
        f"**Single join** (`match_one`, {one['tasks']:,} tasks, {one['full_share']:.0%} full "
        f"or closed, {one['calls']:,} calls, 30 % with a current task; target ≤ "
        f"{TARGET_ONE_MS:g} ms):",
        "",
        "| call | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
        f"| match_one | {m['p50']:.3f} | {m['p95']:.3f} | {m['p99']:.3f} | {m['max']:.2f} |",
        f"| nearest_free | {nf['p50']:.3f} | {nf['p95']:.3f} | {nf['p99']:.3f} | {nf['max']:.2f} |",
        "",
        f"**Re-balance before GO** (`rebalance`, k = {k}; seconds: median of {repeat} runs, "
        "slowest in brackets; capacity = crowd):",
        "",
        "| participants | tasks × cap | greedy s | optimal s | target s | greedy total km "
        "| optimal total km | optimal / greedy | mean walk opt. m |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r, (_, _, _, target) in zip(runs, CASES, strict=True):
        g, o = r["greedy"], r["optimal"]
        lines.append(
            f"| {r['people']:,} | {r['tasks']:,} × {r['cap']} | {r['greedy_s']:.3f} "
            f"({r['greedy_max_s']:.3f}) | {r['optimal_s']:.3f} ({r['optimal_max_s']:.3f}) "
            f"| {target:g} | {g.total_m / 1000:,.1f} | {o.total_m / 1000:,.1f} "
            f"| {o.total_m / g.total_m:.3f} | {o.total_m / r['people']:.0f} |"
        )
    lines += [
        "",
        "Optimal = the greedy result, then an OR-Tools min-cost flow over each participant's "
        "k nearest tasks and the k tasks around its greedy task (its time includes the "
        "greedy). Greedy = nearest-first participants each take the nearest task with room.",
    ]
    for r in runs:
        ref = r["reference"]
        if ref is not None:
            o, g = r["optimal"], r["greedy"]
            lines.append(
                f"Against the same flow with k = {REFERENCE_K} ({r['people']:,} participants: "
                f"{ref.total_m / 1000:,.1f} km in {ref.seconds:.1f} s), the k = {k} optimal "
                f"walks {o.total_m / ref.total_m - 1:+.1%} and the greedy "
                f"{g.total_m / ref.total_m - 1:+.1%}."
            )
    if compare:
        lines += [
            "",
            f"**OR-Tools or scipy** (`--compare-scipy`, k = {k}): the same candidates, arcs and "
            "greedy seed given to each solver; seconds are the solver's alone (OR-Tools: median "
            f"of {repeat} runs; the scipy ones: one run). Totals in metres: OR-Tools rounds each "
            "arc's cost to whole centimetres (`COST_UNIT_M`), scipy optimizes the float metres, "
            "so their optima may differ by up to half a centimetre per participant.",
            "",
            "| participants | tasks × cap | solver | s | total m | unassigned |",
            "|---:|---:|---|---:|---:|---:|",
        ]
        for c in compare:
            lines.append(
                f"| {c['people']:,} | {c['tasks']:,} × {c['cap']} | {c['solver']} "
                f"| {c['s']:.3f} | {c['total_m']:,.2f} | {c['unassigned']} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="update docs/BENCHMARKS.md")
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--compare-scipy",
        action="store_true",
        help="also run scipy's exact solvers on the same arcs as OR-Tools (minutes)",
    )
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    progress(f"match_one: {args.calls:,} calls at 10,000 tasks")
    one = bench_match_one(args.calls, rng)
    runs = [
        bench_rebalance(p, t, c, args.k, args.repeat, rng, reference=i == 0)
        for i, (p, t, c, _) in enumerate(CASES)
    ]
    compare = None
    if args.compare_scipy:
        lp_names = list(SOLVERS)[:2]
        compare = compare_solvers(
            *runs[0]["instance"], runs[0]["capacity"], args.k, args.repeat, lp_names
        )
        p, t, c = SLOT_CASE
        small = zone_instance(p, t, rng)
        compare += compare_solvers(*small, np.full(t, c), args.k, args.repeat, list(SOLVERS))
    md = markdown(one, runs, args.k, args.repeat, compare)
    print(md)
    if args.write:
        write_section("matching", md)
        progress("wrote docs/BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
