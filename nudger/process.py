"""Process-wide tuning that the long-running entry points (worker, listener) apply at start-up,
before any thread exists.

glibc gives every thread that allocates its own malloc arena (up to 8 per core). nudger's database
driver runs each SQLite connection in a thread, and a round moves hundreds of megabytes of message
bytes through them: with one arena per thread, freed memory sits fragmented in each arena and the
worker's resident size grows with the number of connections in use. Two arenas keep it flat at no
measurable cost in speed (docs/performance.md has the figures). The same as setting
MALLOC_ARENA_MAX=2 in the environment, which is honoured when set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

#: mallopt's M_ARENA_MAX parameter (malloc.h)
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (a no-op elsewhere). True if applied. The entry point skips it when
    MALLOC_ARENA_MAX is set: glibc has applied the operator's choice already."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # musl (Alpine) has no mallopt
        log.debug("mallopt unavailable; malloc arenas left as they are")
        return False
