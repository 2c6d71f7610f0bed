"""HTTP helpers: cursor pagination, ETag/If-Match, Idempotency-Key, model responses."""
