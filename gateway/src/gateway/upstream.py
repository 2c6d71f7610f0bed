"""The gateway's HTTP/1.1 client to the services: a keep-alive connection pool on asyncio protocols,
parsing responses with httptools (the C parser uvicorn already uses).

httpx and httpcore were most of the proxy's CPU in bench/ (request and URL models, header
normalisation, h11, anyio locks and cancel scopes for every request). A reverse proxy needs much less:
it forwards headers it has already parsed, as bytes, and hands bodies through.

What it keeps: a bounded pool (waiting for a free slot has its own timeout), connect/read/write
timeouts, streamed request bodies (raw with Content-Length, chunked otherwise), streamed response
bodies with back-pressure, 1xx responses skipped, idle connections dropped after `idle_timeout` (set
it below the services' keep-alive timeout, so the gateway never sends on a connection the service is
closing), a request of any method retried once on a new connection when the kept-alive one turned out
closed before a byte of it was sent, and an idempotent request without a body also when the connection
closed after it was sent but before any answer.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

Headers = list[tuple[bytes, bytes]]

IDEMPOTENT_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE"})
"""Methods that may be sent again on a new connection when a kept-alive one turned out closed (RFC 9110
§9.2.2); only without a body and before any answer arrived."""

MAX_BUFFERED_BYTES = 256 * 1024
"""Response bytes held for a slow reader before reading from the service pauses."""


class UpstreamError(Exception):
    """The service could not be reached, or broke off or garbled its answer (502)."""


class UpstreamTimeout(UpstreamError):
    """The service did not connect, accept or answer in time (504)."""


class _StaleConnection(UpstreamError):
    """A reused connection failed before any answer: safe to try once more on a new one."""


@dataclass(frozen=True)
class Timeouts:
    connect: float
    read: float
    write: float
    pool: float


@dataclass(frozen=True)
class Upstream:
    """A service's base URL, split once."""

    scheme: str
    host: str
    port: int
    host_header: bytes
    prefix: bytes

    @classmethod
    def parse(cls, url: str) -> Upstream:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(
            scheme=parts.scheme,
            host=parts.hostname,
            port=port,
            host_header=parts.netloc.rpartition("@")[2].encode("ascii"),
            prefix=parts.path.rstrip("/").encode("ascii"),
        )


class UpstreamResponse:
    """A response whose body is read from the connection as it arrives; `aclose()` it when done."""

    def __init__(self, connection: _Connection, is_head: bool) -> None:
        self._connection = connection
        self._is_head = is_head
        self.status = 0
        self.headers: Headers = []
        """As received, names lowercased."""
        self.keep_alive = False
        self.received_any = False
        self._informational = False
        self._framed = False
        """The body's end is marked (length or chunked), not the connection's close."""
        self._until_close = False
        self._head: asyncio.Future[None] = connection.loop.create_future()
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._complete = False
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    # Called by the connection (parser callbacks and transport events).

    def _on_headers_complete(self, status: int, keep_alive: bool) -> None:
        if 100 <= status < 200:
            self._informational = True
            self._framed = False
            self.headers = []
            return
        self.status = status
        self.keep_alive = keep_alive and not self._is_head
        self._until_close = not self._framed and status not in (204, 304) and not self._is_head
        if not self._head.done():
            self._head.set_result(None)
        if self._is_head:
            self._finish()

    def _on_body(self, chunk: bytes) -> None:
        if self._complete:
            return
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered > MAX_BUFFERED_BYTES:
            self._connection.pause_reading()
        self._wake()

    def _on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._finish()

    def _on_connection_lost(self) -> None:
        if self._complete:
            return
        if self._head.done() and self._until_close:
            self._finish()
            return
        self._fail(UpstreamError("The service closed the connection before it finished its answer."))

    def _finish(self) -> None:
        self._complete = True
        self._wake()

    def _fail(self, error: UpstreamError) -> None:
        self._error = error
        self.keep_alive = False
        if not self._head.done():
            self._head.set_exception(error)
            self._head.exception()  # retrieved: the sender may already have given up waiting
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # The reader's side.

    async def _wait_head(self, timeout: float) -> None:
        await _wait(self._head, timeout, self._connection.loop)

    async def next_chunk(self, timeout: float) -> bytes | None:
        """The next part of the body, or None at its end."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._buffered <= MAX_BUFFERED_BYTES // 2:
                    self._connection.resume_reading()
                return chunk
            if self._error is not None:
                raise self._error
            if self._complete:
                return None
            self._waiter = self._connection.loop.create_future()
            try:
                await _wait(self._waiter, timeout, self._connection.loop)
            finally:
                self._waiter = None

    async def read(self, timeout: float) -> bytes:
        parts = []
        while (chunk := await self.next_chunk(timeout)) is not None:
            parts.append(chunk)
        return b"".join(parts)

    async def iter_body(self, timeout: float) -> AsyncIterator[bytes]:
        while (chunk := await self.next_chunk(timeout)) is not None:
            yield chunk

    async def aclose(self) -> None:
        """Give the connection back to the pool (answer read to its end) or close it."""
        if self._closed:
            return
        self._closed = True
        reusable = self._complete and self._error is None and self.keep_alive
        self._connection.done(self, reusable=reusable)


async def _wait(future: asyncio.Future[None], timeout: float, loop: asyncio.AbstractEventLoop) -> None:
    """Await `future`, raising UpstreamTimeout after `timeout` seconds (a timer, not a task)."""
    if future.done():
        future.result()
        return

    def expire() -> None:
        if not future.done():
            future.set_exception(UpstreamTimeout("The service did not answer in time."))

    timer = loop.call_later(timeout, expire)
    try:
        await future
    finally:
        timer.cancel()


class _Connection(asyncio.Protocol):
    def __init__(self, pool: UpstreamPool, key: Upstream, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.key = key
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.response: UpstreamResponse | None = None
        self._reading_paused = False
        self._writable: asyncio.Future[None] | None = None
        self.idle_since = 0.0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._forget(self)
        if self.response is not None:
            self.response._on_connection_lost()
        self._wake_writer()

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None or response._complete:
            # Bytes nobody asked for: the connection cannot be trusted any more.
            if response is not None:
                response.keep_alive = False
            self.close()
            return
        response.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            response._fail(UpstreamError(f"The service sent an invalid answer: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost() follows

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        response = self.response
        if response is not None:
            name = name.lower()
            if name == b"content-length" or name == b"transfer-encoding":
                response._framed = True
            response.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.response is not None:
            self.response._on_headers_complete(self.parser.get_status_code(), self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response._on_body(body)

    def on_message_complete(self) -> None:
        if self.response is not None:
            self.response._on_message_complete()

    # used by the pool and the response

    def _wake_writer(self) -> None:
        writable = self._writable
        if writable is not None and not writable.done():
            writable.set_result(None)

    async def drain(self, timeout: float) -> None:
        if self.closed:
            raise UpstreamError("The service closed the connection while the request was sent.")
        writable = self._writable
        if writable is not None and not writable.done():
            await _wait(writable, timeout, self.loop)
            if self.closed:
                raise UpstreamError("The service closed the connection while the request was sent.")

    def pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def done(self, response: UpstreamResponse, *, reusable: bool) -> None:
        if self.response is response:
            self.response = None
        if reusable and not self.closed:
            self.resume_reading()
            self.pool._release(self)
        else:
            self.close()
            self.pool._release(None)


class UpstreamPool:
    """Keep-alive connections to the services, at most `max_connections` requests in flight."""

    def __init__(self, *, max_connections: int, timeouts: Timeouts, idle_timeout: float = 4.0) -> None:
        self.max_connections = max_connections
        self.timeouts = timeouts
        self.idle_timeout = idle_timeout
        """A connection idle this long is closed rather than reused: below the services' keep-alive
        timeout (uvicorn's is 5 s), or a request may cross the service's close on the wire."""
        self._idle: dict[Upstream, list[_Connection]] = {}
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._ssl: ssl.SSLContext | None = None
        self._closing = False

    async def send(
        self,
        upstream: Upstream,
        method: bytes,
        target: bytes,
        headers: Headers,
        body: AsyncIterator[bytes] | None = None,
        *,
        chunked: bool = False,
    ) -> UpstreamResponse:
        """Send one request; the answer's head has arrived when this returns. `target` is the path and
        query under the upstream's base path; `headers` must not hold Host or hop-by-hop headers."""
        loop = asyncio.get_running_loop()
        await self._take_slot(loop)
        try:
            head = _request_head(upstream, method, target, headers, chunked=chunked)
            is_head = method == b"HEAD"
            connection = self._idle_connection(upstream, loop.time())
            if connection is not None:
                try:
                    retry = body is None and method in IDEMPOTENT_METHODS
                    return await self._exchange(connection, head, body, is_head, chunked, retry_stale=retry)
                except _StaleConnection:
                    pass  # the service closed this kept-alive connection as it was used: one new one
            connection = await self._connect(upstream, loop)
            return await self._exchange(connection, head, body, is_head, chunked)
        except BaseException:
            self._release(None)
            raise

    async def _exchange(
        self,
        connection: _Connection,
        head: bytes,
        body: AsyncIterator[bytes] | None,
        is_head: bool,
        chunked: bool,
        *,
        retry_stale: bool = False,
    ) -> UpstreamResponse:
        response = UpstreamResponse(connection, is_head)
        connection.response = response
        transport = connection.transport
        assert transport is not None
        if connection.closed or transport.is_closing():
            # Nothing was sent: safe to send on a new connection whatever the method.
            connection.response = None
            connection.close()
            raise _StaleConnection("The kept-alive connection to the service was closed.")
        try:
            transport.write(head)
            if body is not None:
                await _send_body(connection, body, chunked, self.timeouts.write)
            await response._wait_head(self.timeouts.read)
        except BaseException as exc:
            connection.response = None
            connection.close()
            stale = isinstance(exc, UpstreamError) and not isinstance(exc, UpstreamTimeout)
            if retry_stale and stale and not response.received_any:
                raise _StaleConnection(str(exc)) from exc
            raise
        return response

    def _idle_connection(self, upstream: Upstream, now: float) -> _Connection | None:
        """The most recently used idle connection, if it has not been idle `idle_timeout` (older ones
        below it are closed as well)."""
        idle = self._idle.get(upstream)
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            if now - connection.idle_since >= self.idle_timeout:
                for stale in (connection, *idle):
                    stale.close()
                idle.clear()
                return None
            return connection
        return None

    async def _connect(self, upstream: Upstream, loop: asyncio.AbstractEventLoop) -> _Connection:
        context: ssl.SSLContext | None = None
        if upstream.scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            _transport, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self, upstream, loop),
                    upstream.host,
                    upstream.port,
                    ssl=context,
                ),
                self.timeouts.connect,
            )
        except TimeoutError:
            raise UpstreamTimeout("Connecting to the service timed out.") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError(f"Cannot connect to the service: {exc}") from None
        return connection

    async def _take_slot(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._in_flight < self.max_connections and not self._waiters:
            self._in_flight += 1
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            await _wait(waiter, self.timeouts.pool, loop)
        except UpstreamTimeout:
            self._give_up(waiter)
            raise UpstreamTimeout("No connection to the service became free in time.") from None
        except BaseException:
            self._give_up(waiter)
            raise

    def _give_up(self, waiter: asyncio.Future[None]) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        elif waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            self._release(None)  # the slot was handed over just as the wait ended: pass it on

    def _release(self, connection: _Connection | None) -> None:
        """A request is over; keep its connection (if reusable) and hand the slot on."""
        if connection is not None:
            if self._closing:
                connection.close()
            else:
                connection.idle_since = connection.loop.time()
                self._idle.setdefault(connection.key, []).append(connection)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the waiter; in-flight count unchanged
                return
        self._in_flight -= 1

    def _forget(self, connection: _Connection) -> None:
        idle = self._idle.get(connection.key)
        if idle and connection in idle:
            idle.remove(connection)

    async def aclose(self) -> None:
        self._closing = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def _request_head(
    upstream: Upstream, method: bytes, target: bytes, headers: Headers, *, chunked: bool
) -> bytes:
    parts = [method, b" ", upstream.prefix, target, b" HTTP/1.1\r\nhost: ", upstream.host_header, b"\r\n"]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    if chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


async def _send_body(
    connection: _Connection, body: AsyncIterator[bytes], chunked: bool, timeout: float
) -> None:
    transport = connection.transport
    assert transport is not None
    async for chunk in body:
        if not chunk:
            continue
        await connection.drain(timeout)
        if chunked:
            transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        else:
            transport.write(chunk)
    await connection.drain(timeout)
    if chunked:
        transport.write(b"0\r\n\r\n")
