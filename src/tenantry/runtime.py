"""Tuning of a long-running server process (applied by `tenantry serve` to every worker)."""

from __future__ import annotations

import gc

# (young, middle, full): see `tune_gc`. CPython's defaults are (700, 10, 10).
GC_THRESHOLDS = (50_000, 10, 100)


def tune_gc() -> None:
    """Freeze the objects that live as long as the process and make collections rarer.

    Call once per worker process, after the application is built and before it serves.

    Why: a full collection walks every container object the process tracks. In a worker,
    nearly all of them are made at start-up and live until it exits: modules, classes and
    functions, SQLAlchemy's mappers and compiled statements, pydantic's validators, the app and
    its routes. Measured under load (issue 9), a full collection took 100-120 ms per worker
    every 200-400 list requests, which set those requests' p99; none of that walk ever finds
    garbage.

    - `gc.collect()` then `gc.freeze()`: start-up garbage is collected once, and every object
      left moves to the permanent generation, which no collection examines again. Full
      collections then walk only what was made since (requests in flight, caches).
    - young threshold 700 → 50,000: the count is container allocations minus deallocations.
      A request's objects are freed by reference counting when it ends, so the count mostly
      grows by garbage cycles and by what stays alive; at 700, several young collections ran
      inside one page of 100 rows, each also promoting the request's live objects to older
      generations, where they cost again. A young collection of 50,000 objects takes about a
      millisecond, and cyclic garbage waits for it at most that many objects (a few MB).
    - full threshold 10 → 100: after a freeze the long-lived generation starts empty, so the
      interpreter's own brake (a full collection only when it grew by a quarter) no longer
      spaces them out; one in a hundred middle collections keeps them rare while still
      reclaiming cycles that became garbage after surviving into it.

    The numbers are for CPython 3.11 to 3.13's generational collector.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


_M_MMAP_THRESHOLD = -3  # mallopt(3) parameter number in glibc's malloc.h


def tune_malloc(threshold: int = 1 << 20) -> bool:
    """Fix glibc's mmap threshold; False where the C library is not glibc.

    Why: glibc raises its mmap threshold to the size of any mmapped block freed (up to 32 MiB),
    so after the first argon2 hash (19 MiB) later hashes come from the heap, and each thread
    that hashed keeps its arena's 19 MiB: workers grew by hundreds of MB under concurrent
    sign-ins. Setting the threshold turns the adjustment off: blocks above it are mmapped and
    returned to the system when freed.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False
