"""Building blocks every Ecom service uses.

`create_service_app`, `ServiceRuntime` and `ServiceSettings` are importable from here; they load on
first use, so light users such as `servicekit.broker` stay cheap to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from servicekit.app import ServiceRuntime, create_service_app
    from servicekit.settings import ServiceSettings

__all__ = ["ServiceRuntime", "ServiceSettings", "create_service_app"]


def __getattr__(name: str) -> Any:
    if name in ("ServiceRuntime", "create_service_app"):
        from servicekit import app

        return getattr(app, name)
    if name == "ServiceSettings":
        from servicekit.settings import ServiceSettings

        return ServiceSettings
    raise AttributeError(f"module 'servicekit' has no attribute {name!r}")
