"""Entry point of the deep runner: ``python runner.py [options]`` (see the
package docstring for the contract with the harness).

Run as a script, this loads its own directory as a private package
(``_compat_deep``) and takes that directory off ``sys.path``, so nothing here
can shadow, or be shadowed by, the packages under test.
Standard library only, Python 3.9+.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

PRIVATE_NAME = "_compat_deep"


def load_package() -> ModuleType:
    """This directory as a package: the real one when imported, a private one
    when run as a script."""
    if __package__:
        return importlib.import_module(__package__)
    here = Path(__file__).absolute().parent
    sys.path[:] = [p for p in sys.path if Path(p or os.curdir).absolute() != here]
    spec = importlib.util.spec_from_file_location(
        PRIVATE_NAME, here / "__init__.py", submodule_search_locations=[str(here)]
    )
    assert spec is not None
    assert spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[PRIVATE_NAME] = package
    spec.loader.exec_module(package)
    return package


def main() -> int:
    package = load_package()
    engine = importlib.import_module(package.__name__ + ".engine")
    code: int = engine.main(sys.argv[1:])
    return code


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
