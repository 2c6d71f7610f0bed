"""Tables of analytics-service; the platform's outbox and inbox come from servicekit."""

from __future__ import annotations

from analytics_service.clv import models as clv_models
from analytics_service.fitting import models as fitting_models
from analytics_service.forecasting import models as forecasting_models
from analytics_service.recommendations import models as recommendation_models
from analytics_service.warehouse import models as warehouse_models
from servicekit.events import models as platform_models

__all__ = [
    "clv_models",
    "fitting_models",
    "forecasting_models",
    "platform_models",
    "recommendation_models",
    "warehouse_models",
]
