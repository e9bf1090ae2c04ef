"""An order-preserving parallel map over worker processes with bounded memory."""

import collections
import concurrent.futures
import ctypes
import ctypes.util
import itertools
import multiprocessing
import os
import threading
import time

# glibc mallopt() parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_HEAP_KEEP_BYTES = 256 << 20
_MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's largest allowed value on 64-bit.


def resolve_workers(num_workers):
    """0 means one worker per available core."""
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if num_workers == 0:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return num_workers


def keep_freed_memory():
    """Makes glibc keep freed memory in this process's heap instead of returning it.

    Decoding a face allocates and frees a few MB of buffers per image. By default
    glibc serves such sizes with mmap and gives the pages back on free, so every
    image pays for fresh zeroed pages again: measured here, encoding 816px faces ran
    ~35% faster with the memory kept (scripts/bench_build.py). The heap stays bounded
    by the worker's peak use. A no-op where the C library is not glibc.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
    mallopt(_M_TRIM_THRESHOLD, _HEAP_KEEP_BYTES)


def _exit_with_parent(parent_pid, poll_seconds=0.5):
    """Ends this worker once its parent is gone: a SIGKILLed parent cannot shut the
    pool down, and a worker holding both ends of its task pipe would wait forever."""
    while os.getppid() == parent_pid:
        time.sleep(poll_seconds)
    os._exit(1)


def _init_worker(parent_pid):
    keep_freed_memory()
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def ordered_map(fn, items, num_workers, chunk_size=32, chunks_per_worker=4):
    """Yields fn(item) for each item, in input order, computed in `num_workers` processes.

    Items go to the workers in chunks (amortising pickling), and at most
    `chunks_per_worker * num_workers` chunks are in flight, so memory does not grow
    with the number of items however slowly the caller consumes results. `fn` must be
    picklable (a module-level function or a functools.partial of one). Workers are
    spawned, not forked, because the parent may have TensorFlow's threads running; as
    with any spawned pool, the calling script needs an `if __name__ == "__main__":`
    guard, and its top-level imports are re-run in every worker. One worker is this
    process itself: no pool, so a script without that guard works too (and the caller's
    malloc settings stay as they are: build_input.py sets keep_freed_memory itself).
    """
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    if num_workers == 1:
        yield from map(fn, items)
        return
    context = multiprocessing.get_context("spawn")
    pool = concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=context,
                                                  initializer=_init_worker, initargs=(os.getpid(),))
    try:
        pending = collections.deque()
        for chunk in _chunks(items, chunk_size):
            pending.append(pool.submit(_map_chunk, fn, chunk))
            if len(pending) >= chunks_per_worker * num_workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _chunks(items, size):
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _map_chunk(fn, chunk):
    return [fn(item) for item in chunk]
