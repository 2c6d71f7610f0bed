"""Sync service: wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from servicekit.app import create_service_app
from servicekit.routes import whoami_router
from sync_service.channels.router import router as channels_router
from sync_service.config import Settings
from sync_service.drift.router import router as drift_router
from sync_service.drift.runner import start_jobs, stop_jobs
from sync_service.events import CONSUMERS
from sync_service.feed.router import router as feed_router
from sync_service.inbound.router import router as inbound_router
from sync_service.listings.router import router as listings_router
from sync_service.logistics.router import router as logistics_router
from sync_service.metrics import SYNC_METRICS
from sync_service.push.router import router as push_router
from sync_service.push.router import start_pipeline, stop_pipeline
from sync_service.sales.router import router as sales_router
from sync_service.shipments.router import router as shipments_router
from sync_service.shipments.sweep import start_late_sweep
from sync_service.webhooks import RejectionCounter, authenticate


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = create_service_app(
        settings,
        title="Sync service",
        description=(
            "Sales-channel synchronisation: the channel registry (web stores, marketplaces, "
            "physical stores' POS, product feeds) and each channel's listings, computed from "
            "product-service's events and pushed to webhook and POS channels (signed, retried, per-channel "
            "queues and circuit breakers), with failed deliveries listed and replayable. And the partners' "
            "data coming in: logistics partners' shipment webhooks (Standard Webhooks signatures) and "
            "order tracking; suppliers' inbound deliveries; stores' end-of-day sales files."
        ),
        routers=[
            whoami_router(),
            channels_router,
            listings_router,
            push_router,
            feed_router,
            drift_router,
            logistics_router,
            shipments_router,
            inbound_router,
            sales_router,
        ],
        consumers=CONSUMERS,
        on_startup=[start_pipeline, start_jobs, start_late_sweep],
        on_shutdown=[stop_jobs, stop_pipeline],
        business_metrics=SYNC_METRICS,
        authenticate=authenticate,
    )
    app.add_middleware(RejectionCounter)
    return app


app = create_app()
