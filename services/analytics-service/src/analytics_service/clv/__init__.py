"""Predicted customer lifetime value: BG/NBD + Gamma-Gamma."""
