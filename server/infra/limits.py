"""Operating-system limits a server process needs: one open file per connected phone."""

from __future__ import annotations

__all__ = ["raise_open_file_limit"]

# File descriptors a process needs besides its client sockets (database, Redis, files).
_SPARE_FDS = 256


def raise_open_file_limit(wanted_connections: int) -> str:
    """Raise RLIMIT_NOFILE to its hard limit; a line saying what was reached."""
    import resource  # POSIX only

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft < wanted_connections + _SPARE_FDS:
        return (
            f"warning: the open-file limit is {soft}, so this process can hold about "
            f"{max(0, soft - _SPARE_FDS)} connections, fewer than MAX_CONNECTIONS="
            f"{wanted_connections}; raise it (ulimit -n, LimitNOFILE= in systemd)"
        )
    return f"open-file limit {soft} (room for MAX_CONNECTIONS={wanted_connections})"
