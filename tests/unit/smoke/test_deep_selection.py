"""Selection of a dependent's test modules by what they import."""

from __future__ import annotations

from pathlib import Path

from compat.smoke.deep.selection import (
    candidates,
    index_package,
    is_test_code,
    is_test_module,
    partner_fixtures,
    partner_tests,
    prioritise,
    select_tests,
)
from compat.smoke.deep.selection import imports_of as scan


def test_imports_at_any_depth_relative_and_by_string() -> None:
    source = """
import numpy as np, os.path
from . import _helpers
from ..plotting import _core
from matplotlib.legend import Legend

def test_x():
    import scipy.sparse
    pd = pytest.importorskip("pandas.testing")
    mod = importlib.import_module("lightgbm")

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator
    import xarray
x = 1
"""
    found = scan(source, "pkg.tests.plotting.test_a")
    assert {"numpy", "os", "os.path", "matplotlib", "matplotlib.legend"} <= found
    assert "matplotlib.legend.Legend" in found  # may be a submodule: kept
    assert {"pkg.tests.plotting._helpers", "pkg.tests.plotting._core", "pkg.tests"} <= found
    assert {"scipy", "scipy.sparse", "pandas", "pandas.testing", "lightgbm"} <= found
    assert "sklearn" not in found  # under TYPE_CHECKING: never imported
    assert "xarray" not in found


def test_parenthesised_from_import_and_package_relative() -> None:
    source = "from .core import (\n    a,  # comment\n    b,\n)\nimport sys\n"
    found = scan(source, "pkg.plotting", is_package=True)
    assert {"pkg.plotting.core", "pkg.plotting.core.a", "pkg.plotting.core.b", "sys"} <= found


def test_test_code_names() -> None:
    assert is_test_module("pandas.tests.plotting.test_frame")
    assert is_test_code("pandas.tests.plotting.common")
    assert not is_test_module("pandas.tests.plotting.common")
    assert is_test_code("pandas._testing.asserters")
    assert is_test_code("pandas.util._test_decorators")
    assert not is_test_code("pandas.plotting._matplotlib.core")


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


PACKAGE = {
    "dep/__init__.py": "import numpy\nfrom dep import core\n",
    "dep/core.py": "import numpy as np\n",
    "dep/plotting/__init__.py": "",
    "dep/plotting/_mpl.py": "import matplotlib\nimport numpy\n",
    "dep/stats.py": "from scipy import special\n",
    "dep/util/_test_decorators.py": "def f():\n    safe_import('matplotlib')\n",
    "dep/tests/__init__.py": "",
    "dep/tests/test_core.py": "import numpy as np\nimport dep.util._test_decorators as td\n",
    "dep/tests/plotting/__init__.py": "",
    "dep/tests/plotting/common.py": "def helper():\n    import matplotlib.pyplot\n",
    "dep/tests/plotting/frame/__init__.py": "",
    "dep/tests/plotting/frame/test_frame.py": "from dep.tests.plotting.common import helper\n",
    "dep/tests/plotting/test_via_library.py": "from dep.plotting import _mpl\n",
    "dep/tests/test_stats.py": "import dep.stats\n",
    "dep/tests/test_broken.py": "def f(:\n",
    # scipy.stats-like: the library calls the partner inside a function only
    "dep/lazy.py": (
        "import numpy\nclass Result:\n    def plot(\n        self,\n    ):\n"
        "        import matplotlib.pyplot as plt\n"
    ),
    "dep/tests/test_lazy.py": "import dep.lazy\n",
}


def test_selection_follows_library_code_and_local_helpers(tmp_path: Path) -> None:
    write(tmp_path, PACKAGE)
    index = index_package(tmp_path, "dep")
    assert "dep.tests.test_broken" in index  # the line scan does not need the file to parse
    chosen = select_tests(
        index,
        core=["dep", "dep.core"],
        partners={"numpy": ["numpy"], "matplotlib": ["matplotlib", "pylab"], "scipy": ["scipy"]},
        foundations=["numpy"],
    )
    by_path = {s.module.path: s.partners for s in chosen}
    assert by_path == {
        "dep/tests/test_lazy.py": ("numpy",),  # a foundation only: last, on a budget
        # a helper of its own test tree that imports matplotlib
        "dep/tests/plotting/frame/test_frame.py": ("matplotlib",),
        # library code outside `import dep`: matplotlib, and numpy as a foundation
        "dep/tests/plotting/test_via_library.py": ("matplotlib", "numpy"),
        "dep/tests/test_stats.py": ("scipy",),
    }
    # test_core imports numpy (a foundation: says nothing) and the shared test
    # decorators naming matplotlib (not followed): not selected. test_lazy reaches
    # matplotlib only inside a library function (below a signature over several
    # lines): importing dep.lazy loads numpy alone, a foundation, so it is not selected
    # for matplotlib.
    assert index["dep.lazy"].eager == frozenset({"numpy"})
    assert "matplotlib" in index["dep.lazy"].imports


SMALL = {  # wordcloud-like: one library module that loads all its partners
    "small/__init__.py": "from .cloud import Cloud\n",
    "small/cloud.py": "import numpy\nfrom PIL import Image\nfrom matplotlib import cm\n",
    "small/cli.py": "import argparse\nfrom PIL import Image\nfrom small import Cloud\n",
    "test/test_cloud.py": "from small import Cloud\nimport numpy as np\nfrom PIL import Image\n",
    "test/test_cli.py": "from small import cli\n",
    "test/test_plain.py": "import os\nfrom small import Cloud\n",
    "test/test_colours.py": "from matplotlib import colors\nfrom small import Cloud\n",
}
SMALL_PARTNERS = {"numpy": ["numpy"], "pillow": ["PIL"], "matplotlib": ["matplotlib"]}


def test_where_every_partner_is_a_foundation_each_test_module_calling_one_counts(
    tmp_path: Path,
) -> None:
    write(tmp_path, SMALL)
    index = {**index_package(tmp_path, "small"), **index_package(tmp_path, "test")}
    everything = list(SMALL_PARTNERS)
    core = ["small", "small.cloud"]
    # by the partners' reach alone only the module importing the cli (which `import
    # small` does not load) counts: `import small` loads every partner, so a test
    # importing one says nothing
    alone = select_tests(index, core=core, partners=SMALL_PARTNERS, foundations=everything)
    assert [s.module.path for s in alone] == ["test/test_cli.py"]
    chosen = candidates(index, core=core, partners=SMALL_PARTNERS, foundations=everything)
    by_path = {s.module.path: s.partners for s in chosen}
    assert by_path == {
        "test/test_cli.py": ("pillow",),
        "test/test_cloud.py": ("numpy", "pillow"),  # it calls them itself
        "test/test_colours.py": ("matplotlib",),
    }  # test_plain imports none: not a test of a partner

    # a partner that is no foundation (matplotlib, as if `import small` did not load
    # it) keeps the selection by reach, as before
    loads_two = ["numpy", "pillow"]
    specific = candidates(index, core=core, partners=SMALL_PARTNERS, foundations=loads_two)
    assert [s.module.path for s in specific] == [
        s.module.path
        for s in prioritise(
            select_tests(index, core=core, partners=SMALL_PARTNERS, foundations=loads_two),
            loads_two,
        )
    ]


def test_prioritise_puts_specific_partners_first() -> None:
    from compat.smoke.deep.selection import Selection, SourceModule

    def sel(path: str, *partners: str) -> Selection:
        return Selection(
            module=SourceModule(name=path, path=path, imports=frozenset()), partners=partners
        )

    ordered = prioritise(
        [sel("a", "numpy"), sel("b", "matplotlib"), sel("c", "matplotlib", "numpy")], ["numpy"]
    )
    assert [s.module.path for s in ordered] == ["c", "b", "a"]
    direct = Selection(
        module=SourceModule(name="z", path="z", imports=frozenset()),
        partners=("matplotlib",),
        direct=("matplotlib",),
    )
    assert prioritise([*ordered, direct], ["numpy"])[0] is direct
    # importing the dependent's code that calls the partner too: first of the direct ones
    bridging = Selection(
        module=SourceModule(name="y", path="y", imports=frozenset()),
        partners=("matplotlib",),
        direct=("matplotlib",),
        bridging=("matplotlib",),
    )
    assert prioritise([*ordered, direct, bridging], ["numpy"])[:2] == [bridging, direct]
    # among foundation-only modules, those importing more foundations themselves first
    numpy_only = Selection(
        module=SourceModule(name="a", path="a", imports=frozenset()), partners=("numpy",)
    )
    both = Selection(
        module=SourceModule(name="b", path="b", imports=frozenset()),
        partners=("numpy", "pandas"),
        foundations_direct=("numpy", "pandas"),
    )
    assert prioritise([numpy_only, both], ["numpy", "pandas"]) == [both, numpy_only]


def test_spread_takes_modules_from_every_test_folder_in_turn() -> None:
    from compat.smoke.deep.selection import Selection, SourceModule, spread

    paths = [
        "statsmodels/api/tests/test_a.py",
        "statsmodels/api/tests/test_b.py",
        "statsmodels/api/tests/test_c.py",
        "statsmodels/tsa/tests/test_arima.py",
        "statsmodels/tsa/tests/test_stl.py",
        "statsmodels/regression/tests/test_ols.py",
    ]
    chosen = [
        Selection(module=SourceModule(name=p, path=p, imports=frozenset()), partners=("numpy",))
        for p in paths
    ]
    picked = [s.module.path for s in spread(chosen, 4)]
    assert picked == [
        "statsmodels/api/tests/test_a.py",
        "statsmodels/tsa/tests/test_arima.py",
        "statsmodels/regression/tests/test_ols.py",
        "statsmodels/api/tests/test_b.py",
    ]
    assert len(spread(chosen, 50)) == len(paths)


OPTIONAL = """
import numpy as np
try:
    import matplotlib
    import matplotlib.pyplot as plt
    have_matplotlib = True
except ImportError:
    have_matplotlib = False


def _draw(x):
    plt.plot(x)


def test_math():
    assert np.add(1, 1) == 2


@pytest.mark.skipif(not have_matplotlib, reason="no matplotlib")
def test_plot():
    pass


def test_helper():
    _draw([1])


class TestX:
    def test_lazy(
        self,
    ):
        from matplotlib import pyplot

    def test_fixture(self, pyplot):
        pass

    def test_none(self):
        pass
"""


def test_partner_tests_are_those_using_an_optionally_imported_partner() -> None:
    """scipy's stats and cluster tests import matplotlib in a try block or inside a
    test: only the tests that use it (themselves, through a helper, a skip marker
    or a conftest fixture) exercise the pair."""
    tops = {"matplotlib", "pylab"}
    assert partner_tests(OPTIONAL, tops, fixtures=["pyplot"]) == (
        "test_fixture",
        "test_helper",
        "test_lazy",
        "test_plot",
    )
    # imported whatever happens: every test may use it
    assert partner_tests("import matplotlib\ndef test_a():\n    pass\n", tops) is None
    skip = "mpl = pytest.importorskip('matplotlib')\ndef test_a():\n    pass\n"
    assert partner_tests(skip, tops) is None
    assert partner_tests("def test_a():\n    pass\n", tops) == ()
    conftest = (
        "import pytest\n\n@pytest.fixture\ndef pyplot():\n"
        "    pyplot = pytest.importorskip('matplotlib.pyplot')\n    yield pyplot\n\n"
        "def other():\n    pass\n"
    )
    assert partner_fixtures(conftest, tops) == ("pyplot",)
