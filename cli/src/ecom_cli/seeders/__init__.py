"""Seeder modules: each defines `SEEDER = Seeder(...)` (see ecom_cli.seeding)."""
