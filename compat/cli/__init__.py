"""The command line: parses, calls a workflow, presents the value it returns.

One module per command group (``plan``, ``scan`` with ``check``, ``results`` with
``show``, ``lock`` with ``image``, ``report``, ``nightly``, ``bisect``, ``db``);
``options`` holds the settings and option groups they share; ``console`` the rich
output and the ``Reporter`` the workflows report through; ``main`` the group and the
entry point (``compat = "compat.cli:main"``).
"""

from __future__ import annotations

from compat.cli.main import cli, main

__all__ = ["cli", "main"]
