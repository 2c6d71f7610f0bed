"""The `ecom` command: dev stack, migrations and the operator's tools."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ecom-cli")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
