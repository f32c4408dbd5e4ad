"""server/realtime/rooms.py: the client managers' per-client room index keeps python-socketio's
rooms exactly as they would be without it, while a disconnect no longer scans every room; the same
methods work in the in-process manager and in the Redis one (tests/integration/
test_multiprocess.py runs the Redis one across two real processes)."""

import random
from types import SimpleNamespace

import pytest
import socketio

import server.realtime.rooms
from server.realtime.rooms import IndexedManager, IndexedRedisManager, client_manager

MANAGERS = ["memory", "redis"]


def _manager(kind: str = "memory") -> IndexedManager:
    """An indexed manager attached to a server; the Redis one is not initialized (no
    listener, nothing published: these tests call its local methods only)."""
    if kind == "redis":
        m = IndexedRedisManager("redis://127.0.0.1:1/0", channel="test-rooms")
    else:
        m = IndexedManager()
    m.set_server(socketio.Server(async_mode="threading", client_manager=m))
    return m


def test_client_manager_follows_the_settings():
    """REDIS_URL, REDIS_CHANNEL and DIRECT_WS_WRITES as Flask-SocketIO's message_queue and
    channel would make it (not write-only); the stock managers when wsfast.check fell back."""
    plain = SimpleNamespace(redis_url="", redis_channel="goodmob", direct_ws_writes=True)
    m = client_manager(plain)
    assert type(m) is IndexedManager and m.direct_writes is True
    redis = SimpleNamespace(
        redis_url="redis://127.0.0.1:6379/3", redis_channel="mobs", direct_ws_writes=False
    )
    m = client_manager(redis)
    assert type(m) is IndexedRedisManager
    assert isinstance(m, socketio.RedisManager)  # (server/subscription.py asks that)
    assert (m.redis_url, m.channel, m.write_only, m.direct_writes) == (
        "redis://127.0.0.1:6379/3",
        "mobs",
        False,
        False,
    )
    assert type(client_manager(plain, fast=False)) is socketio.Manager
    stock = client_manager(redis, fast=False)
    assert type(stock) is socketio.RedisManager and stock.channel == "mobs"


@pytest.mark.parametrize("kind", MANAGERS)
def test_rooms_follow_connect_enter_leave_close_and_disconnect(kind):
    m = _manager(kind)
    ns = "/participant"
    sids = [m.connect(f"eio{i}", ns) for i in range(50)]
    rng = random.Random(7)
    for sid in sids:
        for room in rng.sample(["mob:a", "mob:b", "mob:c"], 2):
            m.enter_room(sid, ns, room)
        m.enter_room(sid, ns, f"participant:{sid}")
    assert sorted(m.get_rooms(sids[0], ns)) == sorted(
        r for r, members in m.rooms[ns].items() if r is not None and sids[0] in members
    )
    m.leave_room(sids[1], ns, "mob:a")
    if kind == "redis":  # (its close_room publishes too; the local part is this)
        m._handle_close_room({"room": "mob:c", "namespace": ns})
    else:
        m.close_room("mob:c", ns)
    assert "mob:c" not in m.rooms[ns]
    assert "mob:c" not in m.get_rooms(sids[2], ns)
    for sid in sids[:40]:
        m.disconnect(sid, ns, ignore_queue=True)
    for sid in sids[:40]:
        assert all(sid not in members for members in m.rooms[ns].values())
        assert m.get_rooms(sid, ns) == []
        assert sid not in m.rooms[ns]  # its own room is gone
        assert f"participant:{sid}" not in m.rooms[ns]
    for sid in sids[40:]:
        assert sid in m.rooms[ns][None] and sid in m.rooms[ns][sid]
    for sid in sids[40:]:
        m.disconnect(sid, ns, ignore_queue=True)
    assert ns not in m.rooms  # nothing left behind
    assert not m.rooms_of


@pytest.mark.parametrize("kind", MANAGERS)
def test_a_disconnect_does_not_scan_the_other_clients_rooms(kind):
    m = _manager(kind)
    ns = "/participant"
    sids = [m.connect(f"eio{i}", ns) for i in range(2000)]
    scanned = 0
    real = m.rooms[ns]

    class Counting(dict):
        def items(self):  # the unindexed disconnect walks every room through items()
            nonlocal scanned
            scanned += 1
            return super().items()

        def copy(self):
            nonlocal scanned
            scanned += 1
            return super().copy()

    m.rooms[ns] = Counting(real)
    m.disconnect(sids[0], ns, ignore_queue=True)
    assert scanned == 0
    assert sids[0] not in m.rooms[ns][None]


@pytest.mark.parametrize("kind", MANAGERS)
def test_bulk_events_reach_everyone_in_chunks_others_in_one_go(kind, monkeypatch):
    m = _manager(kind)
    ns = "/participant"
    sids = [m.connect(f"eio{i}", ns) for i in range(250)]
    for sid in sids:
        m.enter_room(sid, ns, "mob:a")
    sent: list[tuple[str, str]] = []
    yields: list[int] = []
    monkeypatch.setattr(m.server, "_send_eio_packet", lambda e, p: sent.append((e, p.data)))
    monkeypatch.setattr(m.server, "sleep", lambda s: yields.append(len(sent)))
    published: list[dict] = []
    monkeypatch.setattr(m, "_publish", published.append, raising=False)
    m.emit("stats", {"joined": 250}, ns, room="mob:a", skip_sid=sids[0])
    assert sorted(e for e, _ in sent) == sorted(f"eio{i}" for i in range(1, 250))
    assert {d for _, d in sent} == {'2/participant,["stats",{"joined":250}]'}
    assert yields == [100, 200]  # other greenlets run between chunks
    sent.clear()
    yields.clear()
    m.emit("phase", {"phase": "action"}, ns, room="mob:a")  # time-critical: in one go
    assert len(sent) == 250 and yields == []
    if kind == "redis":  # the other processes hear both, through the queue
        assert [(p["event"], p["room"]) for p in published] == [
            ("stats", "mob:a"),
            ("phase", "mob:a"),
        ]
        # an emit from another process reaches this one's clients the same way
        sent.clear()
        yields.clear()
        message = {"method": "emit", "event": "stats", "data": [{"joined": 1}],
                   "namespace": ns, "room": "mob:a", "host_id": "other"}  # fmt: skip
        m._handle_emit(message)
        assert len(sent) == 250 and yields == [100, 200]
        assert {d for _, d in sent} == {'2/participant,["stats",{"joined":1}]'}


@pytest.mark.parametrize("kind", MANAGERS)
def test_direct_writes_switch_falls_back_to_the_stock_emit_path(kind, monkeypatch):
    """DIRECT_WS_WRITES=false (``direct_writes``): room events go through python-socketio's
    own Manager.emit (bench/sync.py's side-by-side fan-out), reaching the same clients with
    the same packet; back on, through rooms._send again."""
    m = _manager(kind)
    monkeypatch.setattr(m, "_publish", lambda message: None, raising=False)
    ns = "/participant"
    sids = [m.connect(f"eio{i}", ns) for i in range(5)]
    for sid in sids:
        m.enter_room(sid, ns, "mob:a")
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(m.server, "_send_eio_packet", lambda e, p: sent.append((e, p.data)))
    ours: list[str] = []
    real_send = server.realtime.rooms._send
    monkeypatch.setattr(
        server.realtime.rooms, "_send", lambda *a, **k: (ours.append(a[2]), real_send(*a, **k))
    )
    m.direct_writes = False
    m.emit("phase", {"phase": "action"}, ns, room="mob:a")
    assert ours == []
    assert sorted(e for e, _ in sent) == [f"eio{i}" for i in range(5)]
    assert {d for _, d in sent} == {'2/participant,["phase",{"phase":"action"}]'}
    sent.clear()
    m.direct_writes = True
    m.emit("phase", {"phase": "action"}, ns, room="mob:a")
    assert len(ours) == 1
    assert sorted(e for e, _ in sent) == [f"eio{i}" for i in range(5)]
