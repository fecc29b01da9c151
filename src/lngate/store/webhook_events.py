"""The ``webhook_events`` table: every authenticated webhook as received, and what came of it.

Bodies are stored with the webhook credentials taken out (:func:`redact_credentials`): LNbits'
body is its payment JSON, whose ``webhook`` field is the URL we gave it, ``nonce`` and
``token`` included, and a stored token would let anyone who reads the table ring the webhook.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store.tables import webhook_events

REDACTED = "[redacted]"
CREDENTIAL_PARAMETERS = ("nonce", "token")
# ``name=value`` of a credential query parameter, wherever it sits: in a URL in a JSON string
# (escaped or not, ``&`` possibly written \u0026), or percent-encoded inside another URL.
_CREDENTIAL_PARAMETER = re.compile(
    r"(?P<lead>[?&;]|\\u0026|%26|%3[Ff])(?P<name>" + "|".join(CREDENTIAL_PARAMETERS) + r")"
    r"(?P<equals>=|%3[Dd]|\\u003[Dd])(?P<value>(?:[A-Za-z0-9_.~+/=-]|%(?!26)[0-9A-Fa-f]{2})*)"
)
_MIN_KNOWN_LENGTH = 8  # shorter "known values" would redact ordinary text


def redact_credentials(body: str, known: Iterable[str | None] = ()) -> str:
    """``body`` with every ``nonce``/``token`` query parameter's value, and every ``known``
    credential value anywhere, replaced by ``[redacted]``; everything else unchanged."""
    body = _CREDENTIAL_PARAMETER.sub(
        lambda m: f"{m['lead']}{m['name']}{m['equals']}{REDACTED}", body)
    for value in known:
        if value and len(value) >= _MIN_KNOWN_LENGTH:
            body = body.replace(value, REDACTED)
    return body


# Built once: every webhook call runs both.
_INSERT = insert(webhook_events).returning(webhook_events.c.id)
_SET_OUTCOME = (update(webhook_events).where(webhook_events.c.id == bindparam("event_id"))
                .values(outcome=bindparam("new_outcome")))


async def insert_event(
    conn: AsyncConnection, *, source: str, received_at: datetime, payment_hash: str | None,
    auth: str, headers: dict[str, str], body: str, outcome: str,
) -> int:
    """Store one received webhook; returns its id."""
    result = await conn.execute(
        _INSERT,
        {"source": source, "received_at": received_at, "payment_hash": payment_hash,
         "auth": auth, "headers": headers, "body": body, "outcome": outcome},
    )
    return int(result.scalar_one())


async def set_outcome(conn: AsyncConnection, event_id: int, outcome: str) -> None:
    """Record what handling the event did (``settled``, ``already_settled``, ``not_paid``...)."""
    await conn.execute(_SET_OUTCOME, {"event_id": event_id, "new_outcome": outcome})

