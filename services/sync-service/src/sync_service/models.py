"""Tables of sync-service; the platform's outbox and inbox come from servicekit."""

from __future__ import annotations

from servicekit.events import models as platform_models
from sync_service.channels import models as channel_models
from sync_service.listings import models as listing_models
from sync_service.push import models as push_models

__all__ = ["channel_models", "listing_models", "platform_models", "push_models"]
