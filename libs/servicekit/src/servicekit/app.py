"""The app factory: one call wires a service's database, broker, relay, consumers, errors and probes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from contracts.topics import ALL_TOPICS
from servicekit.auth import JWKSClient, RevocationList, TokenVerifier
from servicekit.authgate import AuthenticationGate, Authenticator, default_is_public, verify_bearer
from servicekit.db import Database, WalCheckpointer
from servicekit.docs import docs_routes
from servicekit.errors import Problem, install_error_handlers, problem_response
from servicekit.events.consumer import ConsumerSpec, EventConsumer, RetryPolicy
from servicekit.events.kafka import ensure_topics, make_producer, start_with_retry, with_dead_letters
from servicekit.events.relay import OutboxRelay
from servicekit.http.limits import BodyLimitMiddleware, JSONBodyMiddleware
from servicekit.logging import configure_logging
from servicekit.metrics import DatabaseMetrics
from servicekit.middleware import HeadAsGet, MetricsMiddleware, RequestIdMiddleware
from servicekit.openapi import install_openapi
from servicekit.settings import ServiceSettings

log = logging.getLogger(__name__)

READY_CHECK_TIMEOUT = 2.0


@dataclass
class ServiceRuntime:
    """What the lifespan started; kept on `app.state.runtime`."""

    settings: ServiceSettings
    database: Database
    producer: AIOKafkaProducer | None = None
    relay: OutboxRelay | None = None
    consumers: list[EventConsumer] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    kafka_ready: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


Hook = Callable[[FastAPI], Awaitable[None]]


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str = "",
    version: str = "0.1.0",
    routers: Sequence[APIRouter] = (),
    consumers: Sequence[ConsumerSpec] = (),
    topics: Sequence[str] = ALL_TOPICS,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    run_relay: bool = True,
    is_public: Callable[[str], bool] = default_is_public,
    authenticate: Authenticator = verify_bearer,
    business_metrics: DatabaseMetrics | None = None,
    itemised_bodies: Mapping[str, str] | None = None,
) -> FastAPI:
    """A FastAPI app with the platform's lifespan, middleware, error handlers and probes.

    Every path but the public ones (`is_public`: probes, metrics, API docs by default) needs a caller
    that `authenticate` accepts before routing, so no answer says anything about a resource to a caller
    without a valid token. `business_metrics` (computed from the database) are refreshed when
    `/metrics` is scraped. `itemised_bodies` (path -> list key): POST routes that judge their body's
    items one by one, whose items are checked against the JSON bounds one by one too
    (`servicekit.http.limits.JSONBodyMiddleware`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service_name, settings.log_level, json_format=settings.log_json)
        database = Database(
            settings.database_url,
            pool_size=settings.database_pool_size,
            echo=settings.database_echo,
            sqlite_cache_kib=settings.database_sqlite_cache_kib,
        )
        runtime = ServiceRuntime(settings=settings, database=database)
        app.state.database = database
        app.state.runtime = runtime
        if not hasattr(app.state, "token_verifier"):
            app.state.token_verifier = TokenVerifier(
                JWKSClient(settings.jwks_url, cache_seconds=settings.jwks_cache_seconds),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                revocations=(
                    RevocationList(settings.revocations_url, cache_seconds=settings.revocations_cache_seconds)
                    if settings.revocations_url
                    else None
                ),
            )
        verifier = app.state.token_verifier
        if isinstance(verifier, TokenVerifier):
            # the keys and the revocation list fetched ahead of the first request, not on its path
            runtime.tasks.append(asyncio.create_task(verifier.warm(), name="token-keys-warm"))
        if settings.kafka_enabled:
            runtime.tasks.append(
                asyncio.create_task(_run_kafka(runtime, consumers, topics, run_relay), name="kafka")
            )
        checkpointer = WalCheckpointer.for_url(settings.database_url)
        if checkpointer is not None:
            runtime.tasks.append(asyncio.create_task(checkpointer.run(runtime.stop), name="wal-checkpoint"))
        for hook in on_startup:
            await hook(app)
        log.info("%s started", settings.service_name)
        try:
            yield
        finally:
            runtime.stop.set()
            for hook in on_shutdown:
                with contextlib.suppress(Exception):
                    await hook(app)
            for task in runtime.tasks:
                try:
                    await asyncio.wait_for(task, 15)
                except (TimeoutError, asyncio.CancelledError):
                    task.cancel()
                except Exception:
                    log.exception("background task %s failed", task.get_name())
            verifier = getattr(app.state, "token_verifier", None)
            if isinstance(verifier, TokenVerifier):
                await verifier.aclose()
            await database.dispose()
            log.info("%s stopped", settings.service_name)

    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        # Swagger UI from the installed bundle (servicekit.docs), not a CDN; no ReDoc (CDN-only).
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        # The platform's metrics are Prometheus (`/metrics`); FastAPI's built-in OpenTelemetry hook would
        # otherwise look up three global providers on every request to find nothing configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    install_openapi(app)
    app.state.business_metrics = business_metrics
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(
        JSONBodyMiddleware, max_check_bytes=settings.max_body_bytes, itemised=itemised_bodies or {}
    )
    # outermost of the three: a request without a valid token learns nothing about its body or target
    app.add_middleware(AuthenticationGate, is_public=is_public, authenticate=authenticate)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(HeadAsGet, router=app.router)  # outermost: everything inside sees a GET
    for router in (_probes(), *routers):
        _add_routes(app, router)
    app.router.routes.extend(docs_routes(title))
    return app


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    """Put a router's routes straight into the app's route list.

    `include_router` keeps the router as a nested group that FastAPI matches lazily: every request then
    walks every group in front of its route with bookkeeping per candidate, and matches its own group
    twice; on product-service that was about a tenth of a product read. A router included with no
    options of its own (the case here) holds routes already carrying their full path, so they are added
    as they are. A router with anything that needs FastAPI's include (nested routers, lifespan or event
    handlers) is included the usual way.
    """
    plain = (
        all(isinstance(route, APIRoute) for route in router.routes)
        and not router.on_startup
        and not router.on_shutdown
        and not getattr(router, "_low_priority_routes", None)
    )
    if plain:
        app.router.routes.extend(router.routes)
    else:
        app.include_router(router)


async def _run_kafka(
    runtime: ServiceRuntime, consumers: Sequence[ConsumerSpec], topics: Sequence[str], run_relay: bool
) -> None:
    settings = runtime.settings
    stop = runtime.stop
    producer = make_producer(settings)
    if not await start_with_retry(producer.start, what="producer", stop_event=stop):
        await producer.stop()
        return
    runtime.producer = producer
    try:
        if settings.kafka_create_topics:
            while not stop.is_set():
                try:
                    await ensure_topics(
                        settings.kafka_bootstrap_servers,
                        with_dead_letters(topics),
                        partitions=settings.kafka_topic_partitions,
                        replication_factor=settings.kafka_replication_factor,
                    )
                    break
                except Exception as exc:
                    log.warning("topic creation failed, retrying: %s", exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)
        runtime.kafka_ready.set()
        workers: list[Awaitable[None]] = []
        if run_relay:
            runtime.relay = OutboxRelay(
                runtime.database,
                producer,
                batch_size=settings.outbox_batch_size,
                poll_interval=settings.outbox_poll_interval_ms / 1000,
                linger=settings.outbox_linger_ms / 1000,
                retention=timedelta(hours=settings.outbox_retention_hours) or None,
                name=settings.service_name,
            )
            workers.append(runtime.relay.run(stop))
        retry = RetryPolicy(
            max_retries=settings.consumer_max_retries,
            backoff=settings.consumer_retry_backoff_ms / 1000,
            backoff_max=settings.consumer_retry_backoff_max_ms / 1000,
        )
        for spec in consumers if settings.kafka_consumers_enabled else ():
            consumer = EventConsumer(
                spec,
                runtime.database,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                dlq_producer=producer,
                retry=retry,
                fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
                session_timeout_ms=settings.kafka_session_timeout_ms,
            )
            runtime.consumers.append(consumer)
            workers.append(consumer.run(stop))
        results = await asyncio.gather(*workers, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.error("event worker stopped with an error", exc_info=result)
    finally:
        runtime.producer = None
        await producer.stop()


async def _broker_reachable(runtime: ServiceRuntime) -> bool:
    producer = runtime.producer
    if producer is None or not runtime.kafka_ready.is_set():
        return False
    ok: bool = await producer.client.force_metadata_update()
    return ok


def _probes() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: database and broker reachable",
        responses={503: {"model": Problem}},
    )
    async def readyz(request: Request) -> Any:
        """200 when the database and the broker answer, 503 problem+json naming what does not."""
        runtime: ServiceRuntime = request.app.state.runtime
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(runtime.database.ping(), READY_CHECK_TIMEOUT)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        if runtime.settings.kafka_enabled:
            try:
                reachable = await asyncio.wait_for(_broker_reachable(runtime), READY_CHECK_TIMEOUT)
                checks["broker"] = "ok" if reachable else "unavailable"
            except Exception as exc:
                checks["broker"] = f"unavailable: {type(exc).__name__}"
        if all(value == "ok" for value in checks.values()):
            return JSONResponse({"status": "ready", "checks": checks})
        failing = ", ".join(name for name, value in checks.items() if value != "ok")
        return problem_response(
            request, 503, "Service Unavailable", f"Not ready: {failing}", extra={"checks": checks}
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics_endpoint(request: Request) -> Response:
        """Prometheus text exposition of this process's metrics."""
        business: DatabaseMetrics | None = request.app.state.business_metrics
        runtime: ServiceRuntime | None = getattr(request.app.state, "runtime", None)
        if business is not None and runtime is not None:
            await business.refresh(runtime.database, max_age=runtime.settings.metrics_refresh_seconds)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
