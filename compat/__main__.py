from __future__ import annotations

from compat.cli import main

main()
