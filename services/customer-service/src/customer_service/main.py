"""Customer service: wiring only."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from customer_service.config import Settings
from customer_service.consent.router import router as consent_router
from customer_service.context import CustomerContext
from customer_service.crypto import UnknownMasterKey
from customer_service.customers.router import router as customers_router
from customer_service.duplicates.router import router as duplicates_router
from customer_service.events import consumers
from customer_service.imports import service as imports
from customer_service.imports import workers as import_workers
from customer_service.imports.router import router as imports_router
from customer_service.keys.router import router as keys_router
from customer_service.metrics import CUSTOMER_METRICS
from customer_service.orders.router import router as orders_router
from customer_service.quality.router import router as quality_router
from customer_service.risk.router import router as risk_router
from servicekit.app import create_service_app
from servicekit.errors import problem_response
from servicekit.routes import whoami_router

log = logging.getLogger(__name__)


async def _unknown_master_key(request: Request, exc: Exception) -> JSONResponse:
    """Stored PII wrapped by a master key this process was not given: an operator's configuration error,
    answered with what to fix rather than a bare 500."""
    log.error("%s on %s %s: add it back to CUSTOMER_MASTER_KEYS", exc, request.method, request.url.path)
    return problem_response(
        request,
        503,
        "Service Unavailable",
        f"Stored customer data cannot be opened: {exc}. CUSTOMER_MASTER_KEYS must list every key that "
        "still wraps data keys (GET /v1/admin/keys counts them by key id).",
    )


async def _stop_import_workers(app: FastAPI) -> None:
    await asyncio.to_thread(import_workers.shutdown)


async def _fail_abandoned_imports(app: FastAPI) -> None:
    context: CustomerContext = app.state.customer_context
    await imports.fail_abandoned_jobs(app.state.database, stale_after=context.import_stale_after)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    context = CustomerContext.from_settings(settings)
    app = create_service_app(
        settings,
        title="Customer service",
        description=(
            "Customer data management: profiles, addresses, purchase history, consent, "
            "encrypted PII, duplicates and merge, risk flags, data quality, imports, and an audit "
            "log of unmasked PII reads."
        ),
        routers=[
            whoami_router(),
            customers_router,
            orders_router,
            consent_router,
            duplicates_router,
            quality_router,
            keys_router,
            risk_router,
            imports_router,
        ],
        consumers=consumers(context),
        on_startup=[_fail_abandoned_imports],
        on_shutdown=[_stop_import_workers],
        business_metrics=CUSTOMER_METRICS,
    )
    app.add_exception_handler(UnknownMasterKey, _unknown_master_key)
    app.state.customer_context = context
    return app


app = create_app()
