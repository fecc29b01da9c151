"""Settings: defaults, the original variable names, and configurations that cannot work."""

from __future__ import annotations

import pytest

from lngate.domain import Network
from lngate.settings import ConfigError, Settings, load_settings

NWC_PUBKEY = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
NWC_SECRET = "3" * 64
NWC_URL = f"nostr+walletconnect://{NWC_PUBKEY}?relay=wss%3A%2F%2Frelay.example.com&secret={NWC_SECRET}"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Each test starts from an empty environment and no .env file."""
    for name in list(Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)
    for name in ("LNBITS_API_KEY", "NEXTAUTH_URL", "PUBLIC_URL", "DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_no_configuration_means_demo_mode_on_sqlite() -> None:
    """With nothing set, the test provider runs on a local SQLite file and bitcoin."""
    settings = load_settings()
    assert settings.test_mode and not settings.real_provider_configured
    assert settings.sqlite_path() is not None
    assert settings.lightning_network is Network.BITCOIN
    assert settings.max_invoice_sats == 1_000_000 and settings.invoice_expiry_seconds == 3600


def test_original_aliases_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """LNBITS_API_KEY and NEXTAUTH_URL work as in the original system."""
    monkeypatch.setenv("LNBITS_ENDPOINT", "https://lnbits.example.com/")
    monkeypatch.setenv("LNBITS_API_KEY", "invoicekey123")
    monkeypatch.setenv("NEXTAUTH_URL", "https://shop.example.com")
    settings = load_settings()
    assert settings.lnbits_configured and not settings.test_mode
    assert settings.lnbits_endpoint == "https://lnbits.example.com"
    assert settings.public_url == "https://shop.example.com"


def test_dotenv_file_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Variables in ./.env configure the gateway."""
    (tmp_path / ".env").write_text("LIGHTNING_NETWORK=regtest\nMAX_INVOICE_SATS=5000\n")
    settings = load_settings()
    assert settings.lightning_network is Network.REGTEST and settings.max_invoice_sats == 5000


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"LNBITS_ENDPOINT": "https://lnbits.example.com"}, "LNBITS_INVOICE_KEY"),
        ({"LNBITS_INVOICE_KEY": "k" * 32}, "LNBITS_ENDPOINT"),
        ({"LNBITS_ENDPOINT": "http://lnbits.example.com", "LNBITS_INVOICE_KEY": "k"},
         "LNBITS_ENDPOINT"),
        ({"LNBITS_ENDPOINT": "not a url", "LNBITS_INVOICE_KEY": "k"}, "LNBITS_ENDPOINT"),
        ({"LNBITS_ENDPOINT": "https://h:99999", "LNBITS_INVOICE_KEY": "k"}, "LNBITS_ENDPOINT"),
        ({"LIGHTNING_NETWORK": "mars"}, "LIGHTNING_NETWORK"),
        ({"MAX_INVOICE_SATS": "0"}, "MAX_INVOICE_SATS"),
        ({"MAX_INVOICE_SATS": "lots"}, "MAX_INVOICE_SATS"),
        ({"INVOICE_EXPIRY_SECONDS": "10"}, "INVOICE_EXPIRY_SECONDS"),
        ({"RATE_LIMIT": "fast"}, "RATE_LIMIT"),
        ({"RATE_LIMIT": "1/second;50/minute"}, "RATE_LIMIT"),
        ({"RATE_LIMIT_CHECK": "0/minute"}, "RATE_LIMIT_CHECK"),
        ({"RATE_LIMIT_ADMIN_LOGIN": "5/month"}, "RATE_LIMIT_ADMIN_LOGIN"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"LIGHTNING_TEST_MODE": "maybe"}, "LIGHTNING_TEST_MODE"),
        ({"LNBITS_NODE_PUBKEY": "abc"}, "LNBITS_NODE_PUBKEY"),
        ({"TRUSTED_PROXIES": "10.0.0.0/8,nonsense"}, "TRUSTED_PROXIES"),
        ({"PUBLIC_URL": "ftp://x"}, "PUBLIC_URL"),
    ],
)
def test_unworkable_configuration_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    """A configuration that cannot work stops start-up with a message naming the variable."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert variable in str(error.value)


def test_plain_http_is_allowed_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """http:// is accepted for a loopback LNbits (local node, tests)."""
    monkeypatch.setenv("LNBITS_ENDPOINT", "http://127.0.0.1:5000")
    monkeypatch.setenv("LNBITS_INVOICE_KEY", "k" * 32)
    assert load_settings().lnbits_configured


def test_secrets_never_appear_in_repr_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys, tokens and URLs with secrets are masked in reprs and in configuration errors."""
    secrets = {"LNBITS_INVOICE_KEY": "invoice-secret-1", "ADMIN_TOKEN": "admin-secret-2",
               "NWC_URL": NWC_URL,
               "DATABASE_URL": "postgresql://u:db-secret-4@h/d"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:  # the invoice key without an endpoint
        load_settings()
    monkeypatch.setenv("LNBITS_ENDPOINT", "https://lnbits.example.com")
    settings = load_settings()
    for value in secrets.values():
        assert value not in repr(settings) and value not in str(error.value)


def test_test_mode_can_be_forced_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """LIGHTNING_TEST_MODE overrides the default in both directions."""
    monkeypatch.setenv("LIGHTNING_TEST_MODE", "false")
    assert not load_settings().test_mode
    monkeypatch.setenv("LIGHTNING_TEST_MODE", "true")
    monkeypatch.setenv("LNBITS_ENDPOINT", "https://lnbits.example.com")
    monkeypatch.setenv("LNBITS_INVOICE_KEY", "k" * 32)
    assert load_settings().test_mode


@pytest.mark.parametrize(("value", "verbose"), [("lightning:*", True), ("*", True),
                                                ("other:*", False), ("", False)])
def test_debug_lightning_star_turns_on_verbose_logs(
    monkeypatch: pytest.MonkeyPatch, value: str, verbose: bool
) -> None:
    """DEBUG=lightning:* (as in the original) enables verbose logs."""
    monkeypatch.setenv("DEBUG", value)
    assert load_settings().verbose is verbose


def test_env_example_is_a_loadable_configuration(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """.env.example copied to .env loads: blank values mean "not set", never an error."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    settings = load_settings()
    assert settings.lnbits_configured
    assert settings.lightning_test_mode is None and not settings.test_mode


@pytest.mark.parametrize(
    "value",
    ["foo", "https://relay.example.com", f"nostr+walletconnect://{NWC_PUBKEY}",
     f"nostr+walletconnect://{NWC_PUBKEY}?relay=wss%3A%2F%2Fr.example.com&secret=zz",
     f"nostr+walletconnect://{NWC_PUBKEY}?relay=https%3A%2F%2Fr.example.com&secret={NWC_SECRET}",
     f"nostr+walletconnect://{'0' * 64}?relay=wss%3A%2F%2Fr.example.com&secret={NWC_SECRET}"],
)
def test_a_malformed_nwc_url_is_refused_by_settings(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """NWC_URL is parsed with the provider's parser when settings load; the secret is not echoed."""
    monkeypatch.setenv("NWC_URL", value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert error.value.problems[0].startswith("NWC_URL: ")
    assert NWC_SECRET not in str(error.value) and "zz" not in str(error.value)


def test_a_valid_nwc_url_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A well-formed NWC URL configures a real provider."""
    monkeypatch.setenv("NWC_URL", NWC_URL)
    settings = load_settings()
    assert settings.real_provider_configured and not settings.test_mode


@pytest.mark.parametrize(
    "value",
    ["sqlite:/./var/lngate.sqlite3", "sqlite://", "mysql://u@h/d", "postgresql://u:pw@h:port/d",
     "lngate.sqlite3"],
)
def test_a_malformed_database_url_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """DATABASE_URL must be a SQLite file or PostgreSQL URL; the message does not repeat it."""
    monkeypatch.setenv("DATABASE_URL", value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert error.value.problems[0].startswith("DATABASE_URL: ")
    assert "pw" not in str(error.value)


def test_each_problem_is_one_line_naming_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several bad variables give one line each, every line naming its variable."""
    bad = {"MAX_INVOICE_SATS": "lots", "RATE_LIMIT": "fast", "NWC_URL": "foo",
           "HTTP_MAX_HEADER_BYTES": "10"}
    for name, value in bad.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    lines = str(error.value).splitlines()
    assert len(lines) == len(bad)
    assert sorted(line.split(": ")[1] for line in lines) == sorted(bad)


def test_a_blank_environment_variable_shadows_the_dotenv_file(
    tmp_path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    """`NAME=` in the environment wins over .env and means "not set": the default applies."""
    (tmp_path / ".env").write_text("MAX_INVOICE_SATS=5000\nADMIN_TOKEN=from-the-dotenv-file\n"
                                   "LNBITS_API_KEY=dotenv-key\nLNBITS_ENDPOINT=https://l.example.com\n")
    assert load_settings().max_invoice_sats == 5000
    monkeypatch.setenv("MAX_INVOICE_SATS", "")
    monkeypatch.setenv("ADMIN_TOKEN", " ")
    monkeypatch.setenv("LNBITS_ENDPOINT", "")
    monkeypatch.setenv("LNBITS_API_KEY", "")
    settings = load_settings()
    assert settings.max_invoice_sats == 1_000_000
    assert settings.admin_token is None
    assert settings.lnbits_endpoint is None and settings.lnbits_invoice_key is None
