"""The worker processes that validate import rows (`CUSTOMER_IMPORT_VALIDATION_PROCESSES`).

Validating and normalising a row (the pydantic model, email and phone number parsing, postcodes) is
pure Python, about a fifth of an import's CPU. In a thread it holds the GIL against the requests the
service is serving; in worker processes it runs on other cores (a 100,000-row file's validation: 6.7 s
against 8.7 s in a thread, on two cores). One pool per service process, started by the first upload
and kept for the next ones; its processes are forked from a fork server (a fresh interpreter that has
imported the validation code once), never from the service process itself, whose threads (database
drivers, Kafka clients) a fork would copy in an unknown state.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# What the fork server imports once, so each worker starts with the validation code loaded.
_PRELOAD = ["customer_service.imports.cleansing"]

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0


def validation_pool(processes: int) -> ProcessPoolExecutor | None:
    """The pool of `processes` validation workers (started on first use), or None when `processes` is 0
    (then rows are validated in a thread of the service process)."""
    global _pool, _pool_size
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
            log.info("started %d import validation worker process(es)", processes)
        return _pool


def size(pool: ProcessPoolExecutor) -> int:
    return _pool_size if pool is _pool else 1


def ready() -> bool:
    """A task that does nothing: its answer says a worker process is up."""
    return True


def warm(processes: int) -> None:
    """Start the workers now if they are not running (an upload is being read: the pool is up by the
    time its rows are validated)."""
    pool = validation_pool(processes)
    if pool is not None:
        for _ in range(processes):
            pool.submit(ready)


async def run(pool: ProcessPoolExecutor, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a worker process of `pool` (`function` importable by name)."""
    result: T = await asyncio.wrap_future(pool.submit(function, *args))
    return result


def discard(pool: ProcessPoolExecutor) -> None:
    """Drop a pool that broke (a worker died): the next import starts a new one."""
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Stop the workers (service shutdown); a later import starts them again."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
