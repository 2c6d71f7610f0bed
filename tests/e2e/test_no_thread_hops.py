"""No route of any service or of the gateway makes FastAPI run code in its thread pool: a plain `def`
endpoint or dependency (at any depth) is run there, a thread hop on every request for what is usually
an attribute read, which costs CPU and, on a busy machine, waits for the pool thread to be scheduled."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from analytics_service.main import create_app as analytics_app
from customer_service.main import create_app as customer_app
from gateway.config import Settings as GatewaySettings
from gateway.main import create_app as gateway_app
from product_service.main import create_app as product_app
from sync_service.main import create_app as sync_app

APPS: dict[str, Callable[[], FastAPI]] = {
    "customer": customer_app,
    "product": product_app,
    "sync": sync_app,
    "analytics": analytics_app,
    "gateway": lambda: gateway_app(GatewaySettings(kafka_enabled=False)),
}


def _runs_in_thread_pool(call: Any) -> bool:
    """What FastAPI would hand to its thread pool (its own test: not a coroutine or async generator
    function, looking through a callable instance's `__call__`)."""
    if inspect.isroutine(call):
        target = call
    elif inspect.isclass(call):
        return False  # a class is instantiated in the loop (its __init__ is cheap by convention)
    else:
        target = getattr(call, "__call__", call)  # noqa: B004
    return not (inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target))


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _offenders(app: FastAPI) -> list[str]:
    found = set()
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        for call in [route.endpoint, *_calls(route.dependant)]:
            if _runs_in_thread_pool(call):
                where = f"{getattr(call, '__module__', '?')}.{getattr(call, '__qualname__', call)}"
                found.add(f"{route.path}: {where}")
    return sorted(found)


@pytest.mark.parametrize("name", sorted(APPS))
def test_no_endpoint_or_dependency_runs_in_the_thread_pool(name: str) -> None:
    assert _offenders(APPS[name]()) == []


def test_the_check_sees_a_plain_def_dependency() -> None:
    from fastapi import Depends

    def plain(limit: int = 1) -> int:
        return limit

    app = FastAPI()

    @app.get("/x")
    async def endpoint(value: int = Depends(plain)) -> int:
        return value

    assert _offenders(app) == [f"/x: {__name__}.test_the_check_sees_a_plain_def_dependency.<locals>.plain"]
