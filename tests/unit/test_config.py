"""Settings: embedded defaults, clear errors naming the variable, production refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.config import DEFAULT_SECRET_KEY, Settings, SettingsError

GOOD_PRODUCTION = {
    "PORTAL_ENV": "production",
    "PORTAL_SECRET_KEY": "x" * 40,
    "PORTAL_DEV_IDP": "false",
    "PORTAL_DATABASE_URL": "postgresql+psycopg://portal:pw@db:5432/portal",
    "PORTAL_AUDIT_SIGNING_KEY_FILE": "/run/secrets/audit",
    "PORTAL_DATA_KEY_FILE": "/run/secrets/data",
}


def test_defaults_are_the_embedded_setup() -> None:
    settings = Settings.from_env({})
    assert settings.env == "development"
    assert settings.is_sqlite
    assert settings.database_url == "sqlite:///var/portal.db"
    assert settings.dev_idp is True
    assert settings.base_url == "http://127.0.0.1:8000"


def test_sqlite_file_follows_the_data_dir() -> None:
    settings = Settings.from_env({"PORTAL_DATA_DIR": "/srv/lead"})
    assert settings.data_dir == Path("/srv/lead")
    assert settings.database_url == "sqlite:////srv/lead/portal.db"


def test_production_with_everything_set_starts() -> None:
    settings = Settings.from_env(GOOD_PRODUCTION)
    assert settings.is_production and not settings.is_sqlite and not settings.dev_idp


@pytest.mark.parametrize(
    ("override", "variable"),
    [
        ({"PORTAL_SECRET_KEY": ""}, "PORTAL_SECRET_KEY"),
        ({"PORTAL_SECRET_KEY": DEFAULT_SECRET_KEY}, "PORTAL_SECRET_KEY"),
        ({"PORTAL_SECRET_KEY": "short"}, "PORTAL_SECRET_KEY"),
        ({"PORTAL_DEV_IDP": "true"}, "PORTAL_DEV_IDP"),
        ({"PORTAL_DATABASE_URL": "sqlite:///var/portal.db"}, "PORTAL_DATABASE_URL"),
        ({"PORTAL_AUDIT_SIGNING_KEY_FILE": ""}, "PORTAL_AUDIT_SIGNING_KEY_FILE"),
        ({"PORTAL_DATA_KEY_FILE": ""}, "PORTAL_DATA_KEY_FILE"),
    ],
)
def test_production_refuses_unsafe_settings(override: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**GOOD_PRODUCTION, **override})
    assert info.value.variable == variable
    assert str(info.value).startswith(f"{variable}: ")


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"PORTAL_DATABASE_URL": "not a url"}, "PORTAL_DATABASE_URL"),
        ({"PORTAL_DATABASE_URL": "mysql://u@h/db"}, "PORTAL_DATABASE_URL"),
        ({"PORTAL_PORT": "eighty"}, "PORTAL_PORT"),
        ({"PORTAL_ENV": "staging"}, "PORTAL_ENV"),
        ({"PORTAL_DEV_IDP": "maybe"}, "PORTAL_DEV_IDP"),
        ({"PORTAL_SESSION_IDLE_MINUTES": "0"}, "PORTAL_SESSION_IDLE_MINUTES"),
        ({"PORTAL_BREAK_GLASS_MINUTES": "600"}, "PORTAL_BREAK_GLASS_MINUTES"),
        ({"PORTAL_BASE_URL": "http://portal.example.org"}, "PORTAL_BASE_URL"),
    ],
)
def test_malformed_settings_name_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=f"^{variable}: "):
        Settings.from_env(environ)


def test_the_sign_in_rate_limit_is_a_setting() -> None:
    assert Settings.from_env({}).login_rate_limit == 120
    assert Settings.from_env({"PORTAL_LOGIN_RATE_LIMIT": "3"}).login_rate_limit == 3
    for bad in ("0", "-1", "many"):
        with pytest.raises(SettingsError, match=r"^PORTAL_LOGIN_RATE_LIMIT: "):
            Settings.from_env({"PORTAL_LOGIN_RATE_LIMIT": bad})


def test_the_time_zone_is_checked() -> None:
    assert Settings.from_env({"PORTAL_TIMEZONE": "America/Chicago"}).zone.key == "America/Chicago"
    with pytest.raises(SettingsError, match="PORTAL_TIMEZONE"):
        Settings.from_env({"PORTAL_TIMEZONE": "Riverton/County"})


def test_the_base_url_follows_the_served_port_unless_it_is_set() -> None:
    """One source of truth for the address (`portal serve/demo --port`, PORTAL_PORT): the
    base URL, and so the development provider's issuer and the redirect URIs, names the port
    served; an explicit PORTAL_BASE_URL (a proxy's public address) always wins."""
    from_variable = Settings.from_env({"PORTAL_PORT": "8123"})
    assert from_variable.base_url == "http://127.0.0.1:8123"
    served = from_variable.serving(port=9001)
    assert (served.port, served.base_url) == (9001, "http://127.0.0.1:9001")
    assert from_variable.serving().base_url == "http://127.0.0.1:8123"
    assert Settings.from_env({}).serving(host="localhost", port=9002).base_url == \
        "http://localhost:9002"
    public = Settings.from_env({"PORTAL_BASE_URL": "https://portal.example.org",
                                "PORTAL_PORT": "8123"})
    assert public.serving(port=9001).port == 9001
    assert public.serving(port=9001).base_url == "https://portal.example.org"
    # Not a setting of its own: PORTAL_BASE_URL_DERIVED is not read.
    assert Settings.from_env({"PORTAL_BASE_URL_DERIVED": "x"}).base_url_derived is True
