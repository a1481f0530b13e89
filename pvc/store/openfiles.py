"""How many files this process may keep open, and raising that to what the system allows.

A store keeps one open file per pack it reads (pvc/store/local/packstore.py), and a restore one per large file it
assembles from chunks. A project with a long history has a pack per commit: a diff or restore across a thousand
versions touches a thousand packs, past the usual soft limit of 1,024 open files (256 on macOS). The soft limit is
raised to the hard one when pvc needs more (as Go's runtime does at start); where the hard one is reached too, the
store closes the files it read least recently (packstore.py), and what must stay open says why it cannot.
"""

from __future__ import annotations

__all__ = ["limit", "raise_limit"]

_CAP = 1 << 20  # a soft limit asked for when the hard one is unlimited (macOS refuses RLIM_INFINITY for files)


def limit() -> int | None:
    """The soft limit on open files, or None where there is none to read (no `resource` module)."""
    try:
        import resource
    except ImportError:  # (Windows)
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def raise_limit(wanted: int | None = None) -> int | None:
    """Raise the soft limit to the hard one (or to `wanted`, if that is less); return the soft limit now."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    target = _CAP if hard == resource.RLIM_INFINITY else hard
    if wanted is not None:
        target = min(target, wanted)
    for value in (target, 10240):  # (macOS: at most OPEN_MAX where the hard limit says unlimited)
        if value <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (value, hard))
            break
        except (ValueError, OSError):
            continue
    return limit()
