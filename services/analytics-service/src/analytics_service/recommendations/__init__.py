"""Bought-together and personal product recommendations."""
