"""redact_credentials: webhook nonces and tokens out, everything else byte for byte."""

from __future__ import annotations

import pytest

from lngate.store.webhook_events import redact_credentials

URL = "https://pay.example.com/api/webhook/lnbits-payment?nonce=N0nce_-12345678&token=T0k-en_abc"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (f'{{"webhook": "{URL}"}}',
         '{"webhook": "https://pay.example.com/api/webhook/lnbits-payment'
         '?nonce=[redacted]&token=[redacted]"}'),
        ('"{\\"webhook\\": \\"https://h/p?token=abc\\\\u0026nonce=def\\"}"',
         '"{\\"webhook\\": \\"https://h/p?token=[redacted]\\\\u0026nonce=[redacted]\\"}"'),
        ("cb=https%3A%2F%2Fh%2Fp%3Fnonce%3DN1%26token%3DT2%26x%3D1",
         "cb=https%3A%2F%2Fh%2Fp%3Fnonce%3D[redacted]%26token%3D[redacted]%26x%3D1"),
        ('{"memo": "a token=word and nonce=word", "amount": 21000}',
         '{"memo": "a token=word and nonce=word", "amount": 21000}'),
        ('{"webhook": "https://h/p?order=42&tokens=1"}', '{"webhook": "https://h/p?order=42&tokens=1"}'),
    ],
)
def test_credential_parameters_are_redacted_and_nothing_else(body: str, expected: str) -> None:
    """Only the values of nonce= and token= query parameters change."""
    assert redact_credentials(body) == expected


def test_known_values_are_redacted_anywhere() -> None:
    """A known credential (the request's nonce) is redacted wherever it appears; short ones not."""
    body = '{"extra": {"ref": "N0nce_-12345678"}, "memo": "abc"}'
    assert redact_credentials(body, known=["N0nce_-12345678", "abc", None]) == (
        '{"extra": {"ref": "[redacted]"}, "memo": "abc"}')
