"""server/rooms.py: the per-client room index keeps python-socketio's rooms exactly as they
would be without it, while a disconnect no longer scans every room."""

import random

from socketio.manager import Manager

import server.rooms

server.rooms.install()


def _manager() -> Manager:
    import socketio

    m = Manager()
    m.set_server(socketio.Server(async_mode="threading"))
    return m


def test_rooms_follow_connect_enter_leave_close_and_disconnect():
    m = _manager()
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
    m.close_room("mob:c", ns)
    assert "mob:c" not in m.rooms[ns]
    assert "mob:c" not in m.get_rooms(sids[2], ns)
    for sid in sids[:40]:
        m.disconnect(sid, ns)
    for sid in sids[:40]:
        assert all(sid not in members for members in m.rooms[ns].values())
        assert m.get_rooms(sid, ns) == []
        assert sid not in m.rooms[ns]  # its own room is gone
        assert f"participant:{sid}" not in m.rooms[ns]
    for sid in sids[40:]:
        assert sid in m.rooms[ns][None] and sid in m.rooms[ns][sid]
    for sid in sids[40:]:
        m.disconnect(sid, ns)
    assert ns not in m.rooms  # nothing left behind
    assert not m.__dict__["_goodmob_rooms_of"]


def test_a_disconnect_does_not_scan_the_other_clients_rooms():
    m = _manager()
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
    m.disconnect(sids[0], ns)
    assert scanned == 0
    assert sids[0] not in m.rooms[ns][None]


def test_bulk_events_reach_everyone_in_chunks_others_in_one_go(monkeypatch):
    m = _manager()
    ns = "/participant"
    sids = [m.connect(f"eio{i}", ns) for i in range(250)]
    for sid in sids:
        m.enter_room(sid, ns, "mob:a")
    sent: list[tuple[str, str]] = []
    yields: list[int] = []
    monkeypatch.setattr(m.server, "_send_eio_packet", lambda e, p: sent.append((e, p.data)))
    monkeypatch.setattr(m.server, "sleep", lambda s: yields.append(len(sent)))
    m.emit("stats", {"joined": 250}, ns, room="mob:a", skip_sid=sids[0])
    assert sorted(e for e, _ in sent) == sorted(f"eio{i}" for i in range(1, 250))
    assert {d for _, d in sent} == {'2/participant,["stats",{"joined":250}]'}
    assert yields == [100, 200]  # other greenlets run between chunks
    sent.clear()
    yields.clear()
    m.emit("phase", {"phase": "action"}, ns, room="mob:a")  # time-critical: in one go
    assert len(sent) == 250 and yields == []


def test_direct_writes_switch_falls_back_to_the_stock_emit_path(monkeypatch):
    """DIRECT_WS_WRITES=false (rooms.use_direct_writes(False)): room events go through
    python-socketio's own Manager.emit (bench/sync.py's side-by-side fan-out), reaching the
    same clients with the same packet; back on, through rooms._send again."""
    m = _manager()
    ns = "/participant"
    sids = [m.connect(f"eio{i}", ns) for i in range(5)]
    for sid in sids:
        m.enter_room(sid, ns, "mob:a")
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(m.server, "_send_eio_packet", lambda e, p: sent.append((e, p.data)))
    ours: list[str] = []
    real_send = server.rooms._send
    monkeypatch.setattr(
        server.rooms, "_send", lambda *a, **k: (ours.append(a[2]), real_send(*a, **k))
    )
    try:
        server.rooms.use_direct_writes(False)
        m.emit("phase", {"phase": "action"}, ns, room="mob:a")
        assert ours == []
        assert sorted(e for e, _ in sent) == [f"eio{i}" for i in range(5)]
        assert {d for _, d in sent} == {'2/participant,["phase",{"phase":"action"}]'}
        sent.clear()
        server.rooms.use_direct_writes(True)
        m.emit("phase", {"phase": "action"}, ns, room="mob:a")
        assert len(ours) == 1
        assert sorted(e for e, _ in sent) == [f"eio{i}" for i in range(5)]
    finally:
        server.rooms.use_direct_writes(True)
