"""Monitoring settings: defaults, and configurations that cannot work refused by name."""

from __future__ import annotations

import pytest

from lngate.settings import ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Each test starts from an empty environment and no .env file."""
    for name in list(Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_original_rules() -> None:
    """30 s probes bounded at 1 s, 30 days of metrics, 4 of 5 / 10 s / 5 min, no channel."""
    s = load_settings()
    assert (s.health_check_interval, s.health_check_timeout, s.metrics_retention_days) == (
        30.0, 1.0, 30)
    assert (s.alert_failure_count, s.alert_failure_window, s.alert_slow_response_seconds,
            s.alert_unavailable_seconds) == (4, 5, 10.0, 300.0)
    assert s.alert_email is None and s.alert_slack_webhook_url is None


def test_blank_channels_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """ALERT_EMAIL= and empty webhook variables mean "no such channel"."""
    for name in ("ALERT_EMAIL", "ALERT_SLACK_WEBHOOK_URL", "ALERT_DISCORD_WEBHOOK_URL"):
        monkeypatch.setenv(name, " ")
    s = load_settings()
    assert s.alert_email is None and s.alert_discord_webhook_url is None


@pytest.mark.parametrize(("env", "variable"), [
    ({"ALERT_FAILURE_COUNT": "6"}, "ALERT_FAILURE_COUNT"),
    ({"ALERT_EMAIL": "not-an-address"}, "ALERT_EMAIL"),
    ({"HEALTH_CHECK_TIMEOUT": "0"}, "HEALTH_CHECK_TIMEOUT"),
    ({"METRICS_RETENTION_DAYS": "0"}, "METRICS_RETENTION_DAYS"),
    ({"ALERT_DISCORD_WEBHOOK_URL": "ftp://discord.example/x"}, "ALERT_DISCORD_WEBHOOK_URL"),
])
def test_unworkable_values_name_the_variable(monkeypatch: pytest.MonkeyPatch,
                                             env: dict[str, str], variable: str) -> None:
    """A monitoring setting that cannot work stops start-up naming the variable."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings()


def test_plain_http_webhook_is_refused_without_echoing_its_token(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook URL embeds a secret: refused over plain http, and never repeated in the error."""
    url = "http://hooks.slack.com/services/T000/B000/sEcReTtOkEn"
    monkeypatch.setenv("ALERT_SLACK_WEBHOOK_URL", url)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "ALERT_SLACK_WEBHOOK_URL" in str(error.value)
    assert "sEcReTtOkEn" not in str(error.value)
    monkeypatch.setenv("ALERT_SLACK_WEBHOOK_URL", "http://127.0.0.1:8080/hook")
    assert load_settings().alert_slack_webhook_url is not None
