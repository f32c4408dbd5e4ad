"""The re-balance shortly before GO: re-assign matched participants to minimize walking.

Run by the scheduler when a mob enters its countdown (in the same transaction as that phase
change). Uses ``geo.rebalance`` (greedy k-d tree seed, then an OR-Tools min-cost flow) over
the participants who hold a task and have a position; the others keep what they hold. The
task rows are locked for the duration on PostgreSQL, so no join can claim a slot meanwhile
(SQLite serializes writers anyway), and every task's ``assigned`` is recounted at the end.
"""

from __future__ import annotations

from collections import Counter

from geoalchemy2.shape import to_shape
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

import geo
from server.infra.models import Mob, Participant, Task

__all__ = ["rebalance_mob"]


def rebalance_mob(
    session: Session, mob: Mob, arrived_m: float = 30.0
) -> list[tuple[int, int | None]]:
    """Re-assign the mob's matched participants; returns ``[(participant id, new task id)]``
    for those whose task changed.

    Someone already within ``arrived_m`` of their task has arrived and keeps it: moving a
    person who stands at their spot a minute before GO would cost more than it saves.
    """
    query = select(Task).where(Task.mob_pk == mob.pk).order_by(Task.id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    tasks = session.scalars(query).all()
    open_tasks = [t for t in tasks if t.status == "open"]
    matched = session.execute(
        select(Participant.id, Participant.lon, Participant.lat, Participant.task_id).where(
            Participant.mob_pk == mob.pk, Participant.task_id.is_not(None)
        )
    ).all()
    where = {t.id: to_shape(t.point) for t in tasks}
    movers, fixed = [], Counter()
    for person in matched:
        spot = where.get(person.task_id)
        if (
            person.lat is None  # no position: keeps the slot
            or spot is None
            or geo.distance_m(person.lon, person.lat, spot.x, spot.y) <= arrived_m
        ):
            fixed[person.task_id] += 1
        else:
            movers.append(person)
    if not movers or not open_tasks:
        return []
    points = [where[t.id] for t in open_tasks]
    capacity = [max(0, t.capacity - fixed.get(t.id, 0)) for t in open_tasks]
    result = geo.rebalance(
        [m.lon for m in movers],
        [m.lat for m in movers],
        [p.x for p in points],
        [p.y for p in points],
        capacity,
    )
    moved = []
    for mover, index in zip(movers, result.task_index.tolist(), strict=True):
        new_task = open_tasks[index].id if index >= 0 else None
        if new_task != mover.task_id:
            moved.append((mover.id, new_task))
    if moved:
        session.execute(
            update(Participant.__table__)
            .where(Participant.__table__.c.id == bindparam("pid"))
            .values(task_id=bindparam("tid")),
            [{"pid": pid, "tid": tid} for pid, tid in moved],
        )
        held = (
            select(func.count())
            .where(Participant.task_id == Task.id)
            .correlate(Task)
            .scalar_subquery()
        )
        session.execute(update(Task).where(Task.mob_pk == mob.pk).values(assigned=held))
        session.expire_all()
    return moved
