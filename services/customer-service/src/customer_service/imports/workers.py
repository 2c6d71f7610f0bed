"""The worker processes that validate import rows (`CUSTOMER_IMPORT_VALIDATION_PROCESSES`).

Validating and normalising a row (the pydantic model, email and phone number parsing, postcodes) is
pure Python, about a fifth of an import's CPU. In a thread it holds the GIL against the requests the
service is serving; in worker processes it runs on other cores (a 100,000-row file's validation: 6.7 s
against 8.7 s in a thread, on two cores). One pool per service process, started by an upload and kept
for the next ones until it has been idle for IDLE_SECONDS; its processes are forked from a fork server
(a fresh interpreter that has imported the validation code once), never from the service process
itself, whose threads (database drivers, Kafka clients) a fork would copy in an unknown state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# What the fork server imports once, so each worker starts with the validation code loaded.
_PRELOAD = ["customer_service.imports.cleansing"]

# The workers stop when no import has used them for this long (they hold ~270 MB between them); the
# next upload starts them again.
IDLE_SECONDS = 300.0

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_pool_up: concurrent.futures.Future[None] | None = None  # the current pool's processes spawned
_users = 0  # validations running
_last_used = 0.0


def validation_pool(processes: int) -> ProcessPoolExecutor | None:
    """The pool of `processes` validation workers (started on first use), or None when `processes` is 0
    (then rows are validated in a thread of the service process)."""
    global _pool, _pool_size, _pool_up
    if processes <= 0:
        return None
    with _lock:
        if _pool is not None and _pool_size != processes:
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None
        if _pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_PRELOAD)
            _pool = ProcessPoolExecutor(max_workers=processes, mp_context=context)
            _pool_size = processes
            _pool_up = _spawn_in_thread(_pool, processes)
            log.info("starting %d import validation worker process(es)", processes)
        return _pool


def _spawn_in_thread(pool: ProcessPoolExecutor, processes: int) -> concurrent.futures.Future[None]:
    """Spawn the pool's processes in a thread of their own. A submit spawns a process when none is idle,
    and the first one waits for the fork server to import the validation code (seconds): done by the
    caller, an upload, it held the event loop, and every request the service was serving, that long."""
    up: concurrent.futures.Future[None] = concurrent.futures.Future()

    def spawn() -> None:
        try:
            for _ in range(processes):
                pool.submit(ready)
        except BaseException as exc:  # shut down meanwhile, or the fork server failed
            up.set_exception(exc)
        else:
            up.set_result(None)

    threading.Thread(target=spawn, name="import-workers-spawn", daemon=True).start()
    return up


async def spawned(pool: ProcessPoolExecutor) -> None:
    """Wait (without holding the event loop) until `pool`'s processes are spawned: only then does a
    submit to it not block its caller. Raises what spawning them raised."""
    with _lock:
        up = _pool_up if _pool is pool else None
    if up is not None:  # shielded: a waiter given up on (its task cancelled) does not cancel it for others
        await asyncio.shield(asyncio.wrap_future(up))


def ready() -> bool:
    """A task that does nothing: its answer says a worker process is up."""
    return True


def warm(processes: int) -> None:
    """Start the workers now, in the background, if they are not running (an upload is being read: the
    pool is up by the time its rows are validated)."""
    if validation_pool(processes) is not None:
        _touch()


@contextlib.contextmanager
def in_use() -> Iterator[None]:
    """Around a validation that uses the pool: the idle countdown starts again when it ends."""
    global _users
    _users += 1
    try:
        yield
    finally:
        _users -= 1
        _touch()


def _touch() -> None:
    global _last_used
    _last_used = time.monotonic()
    asyncio.get_running_loop().call_later(IDLE_SECONDS, _stop_if_idle)


def _stop_if_idle() -> None:
    if _users or time.monotonic() - _last_used < IDLE_SECONDS * 0.999:
        return  # used since: a later countdown decides
    if _taken() is not None:
        log.info("import validation worker processes stopped (idle for %.0f s)", IDLE_SECONDS)


def _taken(only: ProcessPoolExecutor | None = None) -> ProcessPoolExecutor | None:
    """The pool (or `only`, if it is still the pool), no longer the pool, shut down without waiting."""
    global _pool
    with _lock:
        pool = _pool if only is None or _pool is only else None
        if pool is not None:
            _pool = None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
    return pool


async def run(pool: ProcessPoolExecutor, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a worker process of `pool` (`function` importable by name)."""
    await spawned(pool)
    result: T = await asyncio.wrap_future(pool.submit(function, *args))
    return result


def discard(pool: ProcessPoolExecutor) -> None:
    """Drop a pool that broke (a worker died): the next import starts a new one."""
    _taken(pool)


def shutdown() -> None:
    """Stop the workers and wait for them (service shutdown); a later import starts them again."""
    pool = _taken()
    if pool is not None:
        pool.shutdown(wait=True)
