"""PROVIDERS: the ordered provider list, its connection strings, and the secrets they hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, SecretStr
from typer.testing import CliRunner

from lngate.bootstrap import secret_values
from lngate.cli import app
from lngate.config_secrets import SecretUrl
from lngate.provider_specs import ClnRestSpec, LNbitsSpec, LndRestSpec, NWCSpec
from lngate.settings import ConfigError, Settings, load_settings
from lngate.settings_export import render_dotenv, render_json
from tests.doubles.lnd_double import make_self_signed_cert

NWC_PUBKEY = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
NWC_SECRET = "4" * 64
NWC_URI = f"nostr+walletconnect://{NWC_PUBKEY}?relay=wss%3A%2F%2Frelay.example.com&secret={NWC_SECRET}"
NODE_KEY = "02" + "ab" * 32
RUNE = "rUnE-s3cret-0123456789abcdef=="
MACAROON = "0201036c6e64" + "5e" * 40
INVOICE_KEY = "inv0ice-s3cret-key"
ADMIN_KEY = "adm1n-s3cret-key"
SECRETS = [RUNE, MACAROON, INVOICE_KEY, ADMIN_KEY, NWC_URI, NWC_SECRET]
LNBITS = f"name=shop;type=lnbits;server=https://lnbits.example.com;invoice_key={INVOICE_KEY}"
CLN = f"name=node;type=clnrest;server=https://node.example.com:3010;rune={RUNE}"
LND = f"name=lnd;type=lndrest;server=https://lnd.example.com:8080;macaroon={MACAROON}"
NWC = f"name=alby;type=nwc;uri={NWC_URI}"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts from an empty environment and no .env file."""
    for name in list(Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)
    for name in ("PROVIDERS", "LNBITS_API_KEY", "NEXTAUTH_URL", "PUBLIC_URL", "DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def problems_of(**env: str) -> list[str]:
    """The configuration problems ``env`` gives (it must give some)."""
    with pytest.raises(ConfigError) as error:
        load_settings(**env)
    return error.value.problems


# --- the shorthand variables, as before PROVIDERS -------------------------------------------


def test_without_providers_lnbits_comes_first_then_nwc() -> None:
    """Unset PROVIDERS: LNbits from LNBITS_*, then NWC from NWC_URL, under their usual names."""
    settings = load_settings(LNBITS_ENDPOINT="https://lnbits.example.com/",
                             LNBITS_API_KEY=INVOICE_KEY, LNBITS_ADMIN_KEY=ADMIN_KEY,
                             LNBITS_NODE_PUBKEY=NODE_KEY.upper(),
                             NWC_URL=NWC_URI)
    lnbits, nwc = settings.provider_specs
    assert lnbits == LNbitsSpec(name="lnbits", type="lnbits", server="https://lnbits.example.com",
                                invoice_key=SecretStr(INVOICE_KEY),
                                admin_key=SecretStr(ADMIN_KEY), node_pubkey=NODE_KEY)
    assert nwc == NWCSpec(name="nwc", type="nwc", uri=SecretUrl(NWC_URI))
    assert settings.real_provider_configured and not settings.demo_mode


def test_without_any_provider_the_list_is_empty_and_demo_mode_is_on() -> None:
    """Nothing configured: no provider spec, and the test provider serves (demo mode)."""
    settings = load_settings()
    assert settings.provider_specs == [] and settings.demo_mode


def test_shorthands_in_providers_set_the_order() -> None:
    """PROVIDERS=nwc|lnbits puts the NWC wallet before LNbits."""
    settings = load_settings(PROVIDERS="nwc | lnbits", NWC_URL=NWC_URI,
                             LNBITS_ENDPOINT="https://lnbits.example.com",
                             LNBITS_INVOICE_KEY=INVOICE_KEY)
    assert [(s.name, s.type) for s in settings.provider_specs] == [("nwc", "nwc"),
                                                                   ("lnbits", "lnbits")]


@pytest.mark.parametrize(("env", "expected"), [
    ({"PROVIDERS": "lnbits"}, "PROVIDERS: lnbits is listed but LNBITS_ENDPOINT and "
                              "LNBITS_INVOICE_KEY is not set"),
    ({"PROVIDERS": "nwc"}, "PROVIDERS: nwc is listed but NWC_URL is not set"),
    ({"PROVIDERS": CLN, "LNBITS_ENDPOINT": "https://lnbits.example.com",
      "LNBITS_INVOICE_KEY": INVOICE_KEY},
     "LNBITS_ENDPOINT: is set, but PROVIDERS does not list lnbits: add lnbits to PROVIDERS where "
     "it belongs in the order, or unset LNBITS_ENDPOINT"),
    ({"PROVIDERS": CLN, "NWC_URL": NWC_URI},
     "NWC_URL: is set, but PROVIDERS does not list nwc: add nwc to PROVIDERS where it belongs in "
     "the order, or unset NWC_URL"),
])
def test_a_shorthand_and_its_variables_go_together(env: dict[str, str], expected: str) -> None:
    """A shorthand without its variables, or variables PROVIDERS does not use, is refused."""
    assert problems_of(**env) == [expected]


# --- connection strings ---------------------------------------------------------------------


def test_four_providers_in_priority_order_one_per_line(tmp_path: Path) -> None:
    """Four connection strings, one per line, give four specs in that order, secrets typed."""
    cert = make_self_signed_cert(tmp_path)
    lnd = f"{LND};tls_cert={cert.cert_path};private_route_hints=true;node_pubkey={NODE_KEY}"
    settings = load_settings(PROVIDERS=f"\n{LNBITS}\n{CLN};tls_fingerprint={'AB:' * 31}AB\n"
                                       f"  {lnd}  \n{NWC}\n")
    shop, node, lnd_spec, alby = settings.provider_specs
    assert isinstance(shop, LNbitsSpec) and shop.invoice_key.get_secret_value() == INVOICE_KEY
    assert isinstance(node, ClnRestSpec) and node.rune.get_secret_value() == RUNE
    assert node.tls_fingerprint == "AB:" * 31 + "AB" and node.label_prefix == "lngate-"
    assert isinstance(lnd_spec, LndRestSpec) and lnd_spec.macaroon.get_secret_value() == MACAROON
    assert lnd_spec.private_route_hints and lnd_spec.node_pubkey == NODE_KEY
    assert lnd_spec.tls_cert == str(cert.cert_path)
    assert isinstance(alby, NWCSpec) and isinstance(alby.uri, SecretUrl)
    assert [s.name for s in settings.provider_specs] == ["shop", "node", "lnd", "alby"]
    for secret in SECRETS[:-2]:
        assert secret not in repr(settings)


def test_entries_separated_by_bars_and_keys_in_any_case() -> None:
    """``|`` separates entries; keys are case-insensitive; a trailing ``;`` is fine."""
    settings = load_settings(PROVIDERS=f"{CLN.replace('rune=', 'RUNE = ')};|{LNBITS}")
    assert [s.name for s in settings.provider_specs] == ["node", "shop"]


def test_two_lnbits_wallets_under_their_own_names() -> None:
    """Two providers of one type, each with its own name, keep the list's order."""
    backup = LNBITS.replace("name=shop", "name=backup").replace("lnbits.example", "lnbits2.example")
    settings = load_settings(PROVIDERS=f"{LNBITS}|{backup}")
    assert [(s.name, s.type) for s in settings.provider_specs] == [("shop", "lnbits"),
                                                                   ("backup", "lnbits")]


def test_a_dotenv_value_spanning_lines_holds_one_entry_per_line(tmp_path: Path) -> None:
    """In a .env file, a double-quoted PROVIDERS may hold one entry per line."""
    (tmp_path / ".env").write_text(f'PROVIDERS="\n{LNBITS}\n{CLN}\n"\nMAX_INVOICE_SATS=5000\n')
    settings = load_settings()
    assert [s.name for s in settings.provider_specs] == ["shop", "node"]
    assert settings.max_invoice_sats == 5000


def test_a_provider_list_given_as_a_python_list_is_parsed() -> None:
    """Settings(providers=[...]) takes one entry per item, like the variable's lines."""
    settings = Settings(_env_file=None, providers=[LNBITS, CLN])  # type: ignore[call-arg]
    assert [s.name for s in settings.provider_specs] == ["shop", "node"]


HOSTILE = [  # (PROVIDERS, the one problem it gives)
    ("bogus", "entry 1: a bare name must be lnbits or nwc, not 'bogus' (a connection string is "
              "name=...;type=...;key=value...)"),
    (f"lnbits|{INVOICE_KEY}", "entry 2: a bare name must be lnbits or nwc, not this (a connection "
                       "string is name=...;type=...;key=value...)"),
    ("name=x;type=cln;server=https://h.example.com",
     "provider 'x': type 'cln' is unknown (one of lnbits, nwc, clnrest, lndrest)"),
    (f"name=x;server=https://h.example.com;rune={RUNE}",
     "provider 'x': key type is missing (one of lnbits, nwc, clnrest, lndrest)"),
    (f"{CLN};macaroon={MACAROON}",
     "provider 'node' (clnrest): key 'macaroon' is not a key of type clnrest (keys: name, "
     "node_pubkey, server, ca_cert, tls_cert, tls_fingerprint, rune, label_prefix)"),
    (f"{CLN};{RUNE}x=1", "provider 'node' (clnrest): the key of part 5 is not a key of type "
                         "clnrest (keys: name, node_pubkey, server, ca_cert, tls_cert, "
                         "tls_fingerprint, rune, label_prefix)"),
    (f"{CLN};{INVOICE_KEY}=", "provider 'node' (clnrest): the key of part 5 has an empty value"),
    ("name=node;type=clnrest;server=https://node.example.com",
     "provider 'node' (clnrest): key rune is missing"),
    (f"type=lnbits;server=https://l.example.com;invoice_key={INVOICE_KEY}",
     "entry 1 (lnbits): key name is missing"),
    (f"{CLN};rune={RUNE}", "provider 'node' (clnrest): key 'rune' is given twice"),
    (f"{CLN};ca_cert=", "provider 'node' (clnrest): key 'ca_cert' has an empty value"),
    (f"{CLN};{INVOICE_KEY}", "provider 'node' (clnrest): part 5 is not key=value"),
    (f"{LNBITS}|{LNBITS}", "PROVIDERS: the name 'shop' is given to more than one provider"),
    (f"{LNBITS}|{CLN.replace('name=node', 'name=shop')}",
     "PROVIDERS: the name 'shop' is given to more than one provider"),
    (LNBITS.replace("name=shop", "name=test"),
     "provider 'test' (lnbits): name: 'test' is reserved for the gateway's own test provider"),
    (LNBITS.replace("name=shop", "name=Shop"),
     "entry 1 (lnbits): name: must be 1 to 32 lowercase letters, digits, - or _ (starting with "
     "a letter or digit)"),
    (LNBITS.replace("name=shop", "name=" + "s" * 33),
     "entry 1 (lnbits): name: must be 1 to 32 lowercase letters, digits, - or _ (starting with "
     "a letter or digit)"),
    (CLN.replace("https://node.example.com:3010", "http://node.example.com:3010"),
     "provider 'node' (clnrest): server: plain http:// to a non-loopback host (node.example.com);"
     " use https:// so keys are not sent in clear"),
    (CLN.replace("https://node.example.com:3010", f"https://gate:{RUNE}@node.example.com"),
     "provider 'node' (clnrest): server: must not carry a user or password: the provider "
     "authenticates with its own key"),
    (LNBITS.replace("https://lnbits.example.com", f"https://lnbits.example.com/?key={ADMIN_KEY}"),
     "provider 'shop' (lnbits): server: must not have a query or fragment"),
    (CLN.replace("https://node.example.com:3010", "ftp://node.example.com"),
     "provider 'node' (clnrest): server: must be an http(s) URL like "
     "https://node.example.com:3010"),
    (CLN.replace(":3010", ":99999"), "provider 'node' (clnrest): server: has an invalid port"),
    (f"{CLN};node_pubkey=04abc",
     "provider 'node' (clnrest): node_pubkey: must be a 33-byte compressed public key in hex "
     "(66 characters)"),
    (f"{CLN};tls_fingerprint={'ab' * 32};ca_cert=/etc/ca.pem",
     "provider 'node' (clnrest): give at most one of ca_cert, tls_cert, tls_fingerprint, not "
     "ca_cert and tls_fingerprint"),
    (f"{CLN};ca_cert=/nonexistent/ca.pem",
     "provider 'node' (clnrest): CLN TLS: cannot read '/nonexistent/ca.pem': No such file or "
     "directory"),
    (f"{CLN};tls_fingerprint=abcd",
     "provider 'node' (clnrest): CLN TLS: a SHA-256 fingerprint is 64 hex digits"),
    (LND.replace(MACAROON, "not-hex-" + MACAROON),
     "provider 'lnd' (lndrest): LND macaroon must be the macaroon file's bytes in hex"),
    (f"{LND};private_route_hints=perhaps",
     "provider 'lnd' (lndrest): private_route_hints: Input should be a valid boolean, unable to "
     "interpret input"),
    (NWC.replace(f"secret={NWC_SECRET}", f"secret={NWC_SECRET[:-2]}"),
     "provider 'alby' (nwc): NWC URL secret must be 64 hex digits"),
    (f"name=alby;type=nwc;uri=https://relay.example.com/{NWC_SECRET}",
     "provider 'alby' (nwc): NWC URL must start with nostr+walletconnect://"),
]


@pytest.mark.parametrize(("providers", "expected"), HOSTILE,
                         ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
def test_a_wrong_entry_gives_one_line_naming_the_provider_and_the_key(
    providers: str, expected: str
) -> None:
    """Each wrong entry is one line naming the entry (by name when it has a valid one) and the
    key, without any secret value of the entry."""
    problems = problems_of(PROVIDERS=providers)
    prefix = "" if expected.startswith("PROVIDERS: ") else "PROVIDERS: "
    assert problems == [prefix + expected]
    for secret in SECRETS:
        assert secret not in "\n".join(problems)


def test_every_problem_of_every_entry_is_reported_at_once() -> None:
    """Several wrong entries and keys give one line each, all in one error."""
    problems = problems_of(PROVIDERS=f"bogus|{CLN};colour=red;ca_cert=/nonexistent|"
                                     "name=lnd;type=lndrest;server=http://lnd.example.com",
                           MAX_INVOICE_SATS="lots")
    assert problems == [
        "PROVIDERS: entry 1: a bare name must be lnbits or nwc, not 'bogus' (a connection string "
        "is name=...;type=...;key=value...)",
        "PROVIDERS: provider 'node' (clnrest): key 'colour' is not a key of type clnrest (keys: "
        "name, node_pubkey, server, ca_cert, tls_cert, tls_fingerprint, rune, label_prefix)",
        "PROVIDERS: provider 'node' (clnrest): CLN TLS: cannot read '/nonexistent': No such file "
        "or directory",
        "PROVIDERS: provider 'lnd' (lndrest): key macaroon is missing",
        "PROVIDERS: provider 'lnd' (lndrest): server: plain http:// to a non-loopback host "
        "(lnd.example.com); use https:// so keys are not sent in clear",
        "MAX_INVOICE_SATS: Input should be a valid integer, unable to parse string as an integer",
    ]


def test_lngate_serve_prints_one_line_per_provider_problem_and_exits_2() -> None:
    """`lngate serve` with two wrong entries: exit status 2, one stderr line each, no secret."""
    result = CliRunner().invoke(
        app, ["serve", "--port", "1"], catch_exceptions=False,
        env={"PROVIDERS": f"{CLN};rune={RUNE}|name=x;type=eclair", "LOG_FORMAT": "json"})
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "invalid configuration: PROVIDERS: provider 'node' (clnrest): key 'rune' is given twice",
        "invalid configuration: PROVIDERS: provider 'x': type 'eclair' is unknown (one of lnbits, "
        "nwc, clnrest, lndrest)",
    ]
    assert RUNE not in result.output


def test_lnbits_endpoint_with_credentials_is_refused_without_echoing_them() -> None:
    """A user and password in LNBITS_ENDPOINT stop start-up (LNbits authenticates with its
    keys; the provider would refuse it) and the message does not repeat them."""
    problems = problems_of(LNBITS_ENDPOINT="https://gate:pass-w0rd-9@lnbits.example.com",
                           LNBITS_INVOICE_KEY=INVOICE_KEY)
    assert problems == ["LNBITS_ENDPOINT: must not carry a user or password: the provider "
                        "authenticates with its own key"]


# --- secrets, found from their type ---------------------------------------------------------


def test_secret_values_finds_every_secret_of_every_provider() -> None:
    """The redaction list holds each provider's keys, the NWC URIs and their secret, and the
    passwords inside DATABASE_URL and REDIS_URL."""
    settings = load_settings(
        PROVIDERS=f"lnbits|{CLN}|{LND}|{NWC.replace(NWC_SECRET, '6' * 64)}|nwc",
        LNBITS_ENDPOINT="https://lnbits.example.com", LNBITS_INVOICE_KEY=INVOICE_KEY,
        LNBITS_ADMIN_KEY=ADMIN_KEY, NWC_URL=NWC_URI,
        DATABASE_URL="postgresql://gate:db-pa%24%24@db.example.com/lngate?sslmode=require",
        REDIS_URL="redis://:redis-pass-7@127.0.0.1:6379/0",
    )
    found = secret_values(settings)
    for secret in [*SECRETS, "6" * 64, NWC_URI.replace(NWC_SECRET, "6" * 64), "db-pa$$",
                   "redis-pass-7"]:
        assert secret in found, secret
    assert len(found) == len(set(found))


def test_a_new_secret_setting_is_covered_without_touching_secret_values() -> None:
    """A SecretStr field added to Settings, alone or inside a nested model or a list, is in the
    redaction list as soon as it is declared."""

    class Vault(BaseModel):
        token: SecretStr
        hosts: list[SecretStr]

    class MoreSettings(Settings):
        session_key: SecretStr = Field(default=SecretStr("s3ssion-key-1"),
                                       validation_alias="SESSION_KEY")
        vault: Vault = Vault(token=SecretStr("vault-t0ken-2"),
                             hosts=[SecretStr("vault-h0st-3")])

    found = secret_values(MoreSettings(_env_file=None))  # type: ignore[call-arg]
    assert {"s3ssion-key-1", "vault-t0ken-2", "vault-h0st-3"} <= set(found)


# --- lngate config show ---------------------------------------------------------------------


def test_config_show_prints_no_connection_string_and_names_the_providers() -> None:
    """PROVIDERS with connection strings is a secret (comment line, null in JSON) whose comment
    lists the providers in order; no secret of them is printed."""
    settings = load_settings(PROVIDERS=f"{LNBITS}|{CLN}|{LND}|{NWC}")
    dotenv, as_json = render_dotenv(settings), json.dumps(render_json(settings))
    assert ("# PROVIDERS is set: a secret, not printed (providers in order: shop (lnbits), "
            "node (clnrest), lnd (lndrest), alby (nwc))") in dotenv.splitlines()
    assert not any(line.startswith("PROVIDERS=") for line in dotenv.splitlines())
    assert render_json(settings)["PROVIDERS"] is None
    for secret in SECRETS:
        assert secret not in dotenv and secret not in as_json


def test_config_show_prints_a_list_of_shorthands_as_it_is(tmp_path: Path) -> None:
    """PROVIDERS of shorthands holds no secret: printed, and it loads back to the same order."""
    env = {"NWC_URL": NWC_URI, "LNBITS_ENDPOINT": "https://lnbits.example.com",
           "LNBITS_INVOICE_KEY": INVOICE_KEY}
    settings = load_settings(PROVIDERS="nwc|lnbits", **env)
    assert "PROVIDERS=nwc|lnbits" in render_dotenv(settings).splitlines()
    (tmp_path / "saved.env").write_text("PROVIDERS=nwc|lnbits\n")
    loaded = Settings(_env_file=tmp_path / "saved.env", **env)  # type: ignore[call-arg]
    assert loaded.provider_specs == settings.provider_specs
