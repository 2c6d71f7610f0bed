"""Sync service: wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from servicekit.app import create_service_app
from servicekit.routes import whoami_router
from sync_service.config import Settings
from sync_service.events import CONSUMERS


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        settings or Settings(),
        title="Sync service",
        description=(
            "One source of truth across sales channels: pushes changes to every channel, "
            "heals drift, takes in POS sales, supplier feeds and 3PL updates."
        ),
        routers=[whoami_router()],
        consumers=CONSUMERS,
    )


app = create_app()
