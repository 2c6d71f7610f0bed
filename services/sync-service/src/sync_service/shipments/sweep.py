"""The late-delivery sweep, run in the background every `SYNC_LATE_SWEEP_INTERVAL_SECONDS`."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI

from servicekit.app import ServiceRuntime
from sync_service.shipments.service import sweep_late

log = logging.getLogger(__name__)


async def _run(runtime: ServiceRuntime, interval: float) -> None:
    while not runtime.stop.is_set():
        try:
            async with runtime.database.session() as session:
                result = await sweep_late(session)
            if result.alerted:
                log.info("late-delivery sweep: %d shipment(s) late", result.alerted)
        except Exception:
            log.exception("late-delivery sweep failed; trying again next round")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.stop.wait(), interval)


async def start_late_sweep(app: FastAPI) -> None:
    runtime: ServiceRuntime = app.state.runtime
    settings = runtime.settings
    if getattr(settings, "late_sweep_enabled", False):
        interval = float(getattr(settings, "late_sweep_interval_seconds", 300.0))
        runtime.tasks.append(asyncio.create_task(_run(runtime, interval), name="late-sweep"))
