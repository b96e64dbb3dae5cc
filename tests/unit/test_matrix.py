from __future__ import annotations

from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from compat.errors import MatrixError
from compat.matrix import load_matrix

ROOT = Path(__file__).parent.parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(text)
    return path


def test_ml_stack_matrix_loads() -> None:
    matrix = load_matrix(ROOT / "matrix" / "ml-stack.toml")
    assert matrix.names == ("numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "lightgbm")
    assert matrix.packages[0].versions == SpecifierSet(">=1.26")
    assert matrix.bases == ("alpine", "debian-slim", "ubuntu")
    assert matrix.build.may_build("lightgbm")


def test_table_form_with_extras_and_build_list(tmp_path: Path) -> None:
    matrix = load_matrix(
        write(
            tmp_path,
            'build = ["lightgbm"]\nno-binary = ["numpy"]\n'
            '[packages]\nnumpy = "*"\n[packages.LightGBM]\nversions = ">=4"\nextras = ["pandas"]\n',
        )
    )
    lgbm = matrix.packages[1]
    assert lgbm.name == "lightgbm"
    assert lgbm.extras == {"pandas"}
    assert matrix.build.may_build("lightgbm")
    assert matrix.build.may_build("numpy")  # no-binary means built
    assert not matrix.build.may_build("scipy")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('colour = "red"\n[packages]\nnumpy = "*"', "colour", "unknown key"),
        ('[packages]\nnumpy = ">=1.26,<<3"', "packages.numpy", "not a valid version specifier"),
        ('[packages]\n"num py" = "*"', "packages.num py", "not a valid package name"),
        ("[packages]\n", "packages", "needs a table of packages"),
        ('strategy = "random"\n[packages]\nnumpy = "*"', "strategy", "is not one of"),
        ('cap = 0\n[packages]\nnumpy = "*"', "cap", "at least 1"),
        ('[packages]\nnumpy = "*"\nNumPy = "*"', "packages.NumPy", "same package"),
        ('[packages.numpy]\nversion = "*"', "packages.numpy.version", "unknown key"),
        ('build = "sometimes"\n[packages]\nnumpy = "*"', "build", '"missing"'),
        ("[packages]\nnumpy = 3", "packages.numpy", "must be a string"),
    ],
)
def test_bad_matrix_names_file_key_and_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    assert info.value.path == str(path)
    assert info.value.key == key
    assert problem in info.value.problem
    assert str(path) in str(info.value)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MatrixError, match="not valid TOML"):
        load_matrix(write(tmp_path, "[packages\n"))
    with pytest.raises(MatrixError, match="cannot read"):
        load_matrix(tmp_path / "absent.toml")
