"""NetworkSettings: explicit options first, then pip's and OpenSSL's variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from compat.errors import UsageError
from compat.settings import CONTAINER_CA_PATH, NetworkSettings, normalize_index_url


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "corp-ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://pypi.org/simple", "https://pypi.org/simple/"),
        ("https://pypi.org/simple/", "https://pypi.org/simple/"),
        ("https://pypi.org", "https://pypi.org/simple/"),
        (" https://mirror.corp/api/pypi/pypi/simple ", "https://mirror.corp/api/pypi/pypi/simple/"),
        ("http://localhost:8080/root/pypi/+simple", "http://localhost:8080/root/pypi/+simple/"),
    ],
)
def test_index_url_forms(given: str, expected: str) -> None:
    assert normalize_index_url(given) == expected


@pytest.mark.parametrize("bad", ["pypi.org/simple", "ftp://host/simple", "file:///tmp/x"])
def test_bad_index_urls(bad: str) -> None:
    with pytest.raises(UsageError, match="not an http"):
        normalize_index_url(bad)


def test_defaults_from_an_empty_environment() -> None:
    settings = NetworkSettings.from_env({})
    assert settings.index_url == "https://pypi.org/simple/"
    assert settings.ca_bundle is None
    assert settings.proxy is None


def test_environment_variables(bundle: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_text("x")
    settings = NetworkSettings.from_env(
        {
            "PIP_INDEX_URL": "https://mirror.corp/simple",
            "REQUESTS_CA_BUNDLE": str(other),
            "PIP_CERT": str(bundle),
            "HTTPS_PROXY": "http://proxy.corp:3128",
            "NO_PROXY": "localhost, .corp",
        }
    )
    assert settings.index_url == "https://mirror.corp/simple/"
    assert settings.ca_bundle == bundle  # PIP_CERT before REQUESTS_CA_BUNDLE
    assert settings.proxy == "http://proxy.corp:3128"
    assert settings.no_proxy == ("localhost", ".corp")
    ssl_first = NetworkSettings.from_env({"SSL_CERT_FILE": str(other), "PIP_CERT": str(bundle)})
    assert ssl_first.ca_bundle == other


def test_explicit_options_win(bundle: Path, tmp_path: Path) -> None:
    env_bundle = tmp_path / "env.pem"
    env_bundle.write_text("x")
    settings = NetworkSettings.from_env(
        {"PIP_INDEX_URL": "https://env/simple", "SSL_CERT_FILE": str(env_bundle)},
        index_url="https://option/simple",
        cert=str(bundle),
    )
    assert settings.index_url == "https://option/simple/"
    assert settings.ca_bundle == bundle


def test_a_missing_bundle_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="SSL_CERT_FILE"):
        NetworkSettings.from_env({"SSL_CERT_FILE": str(tmp_path / "absent.pem")})
    with pytest.raises(UsageError, match="--cert"):
        NetworkSettings.from_env({}, cert=str(tmp_path / "absent.pem"))


def test_container_environment_and_mounts(bundle: Path) -> None:
    settings = NetworkSettings(
        index_url="https://mirror.corp/simple", ca_bundle=bundle, proxy="http://p:3128"
    )
    env = settings.container_env()
    assert env["PIP_INDEX_URL"] == "https://mirror.corp/simple/"
    assert env["UV_INDEX_URL"] == "https://mirror.corp/simple/"
    for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        assert env[name] == CONTAINER_CA_PATH
    assert env["HTTPS_PROXY"] == "http://p:3128"
    assert settings.container_mounts() == {str(bundle.resolve()): CONTAINER_CA_PATH}
    assert settings.container_env("/ca.pem")["PIP_CERT"] == "/ca.pem"


def test_container_environment_without_a_bundle() -> None:
    settings = NetworkSettings()
    assert settings.container_env() == {
        "PIP_INDEX_URL": "https://pypi.org/simple/",
        "UV_INDEX_URL": "https://pypi.org/simple/",
    }
    assert settings.container_mounts() == {}
