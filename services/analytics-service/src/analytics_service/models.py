"""Tables of analytics-service; the platform's outbox and inbox come from servicekit."""

from __future__ import annotations

from analytics_service.warehouse import models as warehouse_models
from servicekit.events import models as platform_models

__all__ = ["platform_models", "warehouse_models"]
