"""Customer service: wiring only."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from customer_service.config import Settings
from customer_service.consent.router import router as consent_router
from customer_service.context import CustomerContext
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
from servicekit.routes import whoami_router


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
    app.state.customer_context = context
    return app


app = create_app()
