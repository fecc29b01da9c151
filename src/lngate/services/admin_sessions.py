"""Operator sessions for the browser back office: sign in with the admin token, sign out.

Design: server-side sessions. Signing in draws a random 256-bit token, the cookie's value; the
database keeps only its SHA-256 (``admin_sessions.token_hash``), with an absolute expiry and a
revocation time, so a session is valid only while its row says so: signing out, or a changed
``ADMIN_TOKEN`` (each row records a keyed digest of the token that signed it in), ends it on
every gateway process at once, and a copy of the table gives no usable cookie. One indexed
read per request is the price; a signed stateless token would need a revocation list anyway.

The CSRF token of a session is ``HMAC-SHA256(session token, "lngate/csrf/v1")``: bound to the
session, never stored, unknowable without the (HttpOnly) cookie, and compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from lngate.services.clock import WallClock
from lngate.store import Database, audit
from lngate.store.admin_sessions import (
    SessionRow,
    delete_expired,
    insert_session,
    live_session,
    revoke_session,
)

TOKEN_BYTES = 32
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
_CSRF_CONTEXT = b"lngate/csrf/v1"
_ADMIN_KEY_CONTEXT = b"lngate/admin-session/v1"
EXPIRED_KEPT = timedelta(days=7)
"""Expired sessions stay this long (for the record), then go at the next sign-in."""


def token_matches(given: str, admin_token: str) -> bool:
    """Whether ``given`` is the admin token (constant time)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), admin_token.encode())


def admin_key(admin_token: str) -> str:
    """A keyed digest of the admin token, stored with each session it opened."""
    return hmac.new(admin_token.encode(), _ADMIN_KEY_CONTEXT, hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    """How a session token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AdminSession:
    """A live session; ``token`` is the cookie's value (never log it)."""

    token: str
    row: SessionRow

    @property
    def actor(self) -> str:
        """Who acts, for the audit log: ``session:`` and the first 12 digits of the token's
        hash (not of the token)."""
        return "session:" + self.row.token_hash[:12]

    @property
    def csrf_token(self) -> str:
        """The synchronizer token every state-changing form of this session must carry."""
        digest = hmac.new(self.token.encode(), _CSRF_CONTEXT, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def csrf_matches(self, given: str) -> bool:
        """Whether ``given`` is this session's CSRF token (constant time)."""
        return hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                                   self.csrf_token.encode())


async def open_session(
    db: Database, *, admin_token: str, lifetime: timedelta, clock: WallClock,
    client_ip: str | None, user_agent: str | None,
) -> AdminSession:
    """A new session (the admin token was checked by the caller), audited ``session.login``."""
    now = clock()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = SessionRow(token_hash=token_hash(token), admin_key=admin_key(admin_token),
                     created_at=now, expires_at=now + lifetime, client_ip=client_ip,
                     user_agent=user_agent)
    session = AdminSession(token, row)
    async with db.transaction() as conn:
        await delete_expired(conn, now - EXPIRED_KEPT)
        await insert_session(conn, row)
        await audit.record(conn, at=now, actor=session.actor, action="session.login",
                           target=None, details={"clientIp": client_ip,
                                                 "expiresAt": row.expires_at.isoformat()})
    return session


async def find_session(
    db: Database, token: str, *, admin_token: str, clock: WallClock,
) -> AdminSession | None:
    """The live session of this cookie value: neither expired nor revoked, and opened with the
    current admin token; ``None`` otherwise."""
    if not _TOKEN_SHAPE.fullmatch(token):
        return None
    async with db.connect() as conn:
        row = await live_session(conn, token_hash(token), clock())
    if row is None or not hmac.compare_digest(row.admin_key, admin_key(admin_token)):
        return None
    return AdminSession(token, row)


async def close_session(db: Database, session: AdminSession, *, clock: WallClock) -> bool:
    """Revoke the session, audited ``session.logout``; ``False`` when it was no longer live."""
    now = clock()
    async with db.transaction() as conn:
        revoked = await revoke_session(conn, session.row.token_hash, now)
        if revoked:
            await audit.record(conn, at=now, actor=session.actor, action="session.logout",
                               target=None)
    return revoked
