"""Demand forecasts, days of cover and reorder suggestions."""
