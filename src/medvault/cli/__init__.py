"""The ``medvault`` command line."""

from medvault.cli.main import cli, main

__all__ = ["cli", "main"]
