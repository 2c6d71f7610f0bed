from ecom_cli.main import app

app(prog_name="ecom")
