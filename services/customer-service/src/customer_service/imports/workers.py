"""The worker processes of imports: the ones that validate rows (`CUSTOMER_IMPORT_VALIDATION_PROCESSES`)
and the one that scores a chunk's duplicates while the service writes it (`scoring`).

Validating and normalising a row (the pydantic model, email and phone number parsing, postcodes) is
pure Python, about a fifth of an import's CPU. In a thread it holds the GIL against the requests the
service is serving; in worker processes it runs on other cores (a 100,000-row file's validation: 6.7 s
against 8.7 s in a thread, on two cores). Each kind has one pool per service process, started by an
upload and kept for the next ones until it has been idle for IDLE_SECONDS; its processes are forked
from a fork server (a fresh interpreter that has imported the import code once), never from the service
process itself, whose threads (database drivers, Kafka clients) a fork would copy in an unknown state.
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

# What the fork server imports once, so each worker starts with the import code loaded.
_PRELOAD = ["customer_service.imports.cleansing", "customer_service.imports.scoring"]

# The workers stop when no import has used them for this long (the validation workers hold ~270 MB
# between them); the next upload starts them again.
IDLE_SECONDS = 300.0


class WorkerPool:
    """One kind of worker processes: a pool of them, started on first use and stopped when idle."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._size = 0
        self._up: concurrent.futures.Future[None] | None = None  # the current pool's processes spawned
        self._users = 0  # imports using it
        self._last_used = 0.0

    def pool(self, processes: int) -> ProcessPoolExecutor | None:
        """The pool of `processes` workers (started on first use), or None when `processes` is 0."""
        if processes <= 0:
            return None
        with self._lock:
            if self._pool is not None and self._size != processes:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            if self._pool is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(_PRELOAD)
                self._pool = ProcessPoolExecutor(max_workers=processes, mp_context=context)
                self._size = processes
                self._up = _spawn_in_thread(self._pool, processes)
                log.info("starting %d import %s worker process(es)", processes, self.kind)
            return self._pool

    async def spawned(self, pool: ProcessPoolExecutor) -> None:
        """Wait (without holding the event loop) until `pool`'s processes are spawned: only then does a
        submit to it not block its caller. Raises what spawning them raised."""
        with self._lock:
            up = self._up if self._pool is pool else None
        if up is not None:
            # Shielded: a waiter given up on (its task cancelled) does not cancel it for others.
            await asyncio.shield(asyncio.wrap_future(up))

    def warm(self, processes: int) -> None:
        """Start the workers now, in the background, if they are not running."""
        if self.pool(processes) is not None:
            self._touch()

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Around an import's use of the pool: the idle countdown starts again when it ends."""
        self._users += 1
        try:
            yield
        finally:
            self._users -= 1
            self._touch()

    def _touch(self) -> None:
        self._last_used = time.monotonic()
        asyncio.get_running_loop().call_later(IDLE_SECONDS, self._stop_if_idle)

    def _stop_if_idle(self) -> None:
        if self._users or time.monotonic() - self._last_used < IDLE_SECONDS * 0.999:
            return  # used since: a later countdown decides
        if self._taken() is not None:
            log.info("import %s worker processes stopped (idle for %.0f s)", self.kind, IDLE_SECONDS)

    def _taken(self, only: ProcessPoolExecutor | None = None) -> ProcessPoolExecutor | None:
        """The pool (or `only`, if it is still the pool), no longer the pool, shut down without waiting."""
        with self._lock:
            pool = self._pool if only is None or self._pool is only else None
            if pool is not None:
                self._pool = None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        return pool

    async def run(self, pool: ProcessPoolExecutor, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a worker process of `pool` (`function` importable by name)."""
        await self.spawned(pool)
        result: T = await asyncio.wrap_future(pool.submit(function, *args))
        return result

    def discard(self, pool: ProcessPoolExecutor) -> None:
        """Drop a pool that broke (a worker died): the next import starts a new one."""
        self._taken(pool)

    def shutdown(self) -> None:
        """Stop the workers and wait for them (service shutdown); a later import starts them again."""
        pool = self._taken()
        if pool is not None:
            pool.shutdown(wait=True)


def _spawn_in_thread(pool: ProcessPoolExecutor, processes: int) -> concurrent.futures.Future[None]:
    """Spawn the pool's processes in a thread of their own. A submit spawns a process when none is idle,
    and the first one waits for the fork server to import the import code (seconds): done by the
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


def ready() -> bool:
    """A task that does nothing: its answer says a worker process is up."""
    return True


VALIDATION = WorkerPool("validation")
# One process: it keeps what it has scored of a job for the job's next chunks.
SCORING = WorkerPool("scoring")


def warm(processes: int, *, scoring: bool = True) -> None:
    """Start `processes` validation workers (and the scoring worker, with `scoring`) now, in the
    background, if they are not running (an upload is being read: they are up by the time its rows are
    validated)."""
    VALIDATION.warm(processes)
    SCORING.warm(1 if scoring else 0)


def shutdown() -> None:
    """Stop every worker process and wait for them (service shutdown)."""
    VALIDATION.shutdown()
    SCORING.shutdown()
