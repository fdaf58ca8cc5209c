"""Handing a finished class's memory back to the system: how a server process should start, and release_memory().

After a class (issue 9: many sessions editing, a few training, then every page closed) the results cache and
Streamlit's sessions are empty and pyarrow's pool holds nothing, yet RSS stays up: the memory sits in allocators,
freed but kept. Two places, measured inside the server (benchmarks/bench_classroom.py):

- pymalloc, CPython's allocator of small objects, gives a 1 MiB arena back only when every object in it is gone. A
  class's reruns fill a hundred or more new arenas; the few objects that outlive the class, scattered over them,
  keep them all (20 viewers: 110-125 extra arenas, over 90 % of it unused pools, with the live objects back to
  their baseline bytes). With PYTHONMALLOC=malloc the same objects come from glibc's malloc, whose malloc_trim(0)
  gives back every whole free page in its arenas.
- glibc's malloc_trim(0) shrinks the top of the main arena only: the free top of each thread's arena (Streamlit runs
  every session's script in its own thread, training runs in worker threads) stays. With MALLOC_ARENA_MAX=1 every
  thread allocates from the main arena (the threads take turns on the interpreter lock anyway).

Both variables are read when the process starts, so they belong in the server's environment (SERVER_ENV), not in
the app. Stdlib only, so that launchers (deploy/serve.py, the benchmarks) can import it without Streamlit or torch.
"""
from __future__ import annotations

import ctypes
import gc
import sys

# The environment a server process should start with (see the module's docstring).
SERVER_ENV = {"PYTHONMALLOC": "malloc", "MALLOC_ARENA_MAX": "1"}

_libc = None


def _glibc():
    """glibc, or None (another C library, or not Linux)."""
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL("libc.so.6")
            lib.malloc_trim          # glibc's own; musl and macOS have none
        except (OSError, AttributeError):
            lib = False
        _libc = lib
    return _libc or None


def pymalloc_in_use() -> bool:
    """Whether Python's small objects come from pymalloc (CPython's default) rather than the C library's malloc.

    sys.getallocatedblocks() counts pymalloc's blocks only: it is 0 under PYTHONMALLOC=malloc."""
    return sys.getallocatedblocks() > 0


def release_memory() -> bool:
    """Collect garbage, then hand the free pages of every glibc malloc arena back to the system (malloc_trim(0)).

    Returns whether there was a glibc to ask. What stays (see the module's docstring): pymalloc's arenas that still
    hold an object, and the free tops of the thread arenas."""
    gc.collect()
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True

