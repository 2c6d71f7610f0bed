"""Model (re)fits: one job fits forecasts, recommendations and CLV from the analytics store."""
