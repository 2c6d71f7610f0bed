"""One module per command (or per Typer sub-app), registered in `ecom_cli.main`."""
