"""The node public key each provider's invoices must be signed by.

A valid signature alone proves nothing: most invoices carry no payee field, so the payee is
recovered from the signature and a tampered invoice simply recovers to another key. The check
means something only against a known key: pinned in settings, reported by the provider (NWC
``get_info``, the test provider's own key), or learned from the first valid invoice
(trust on first use, logged).

Learned keys are stored (``payee_keys``) when a database is given, so every instance of the
gateway, and the next start, trusts the same key: the first instance to learn one wins, and an
instance that meanwhile validated an invoice signed by another key refuses that invoice.
Pinned keys come from configuration and are not stored.
"""

from __future__ import annotations

import structlog

from lngate.errors import InvalidInvoice
from lngate.services.clock import WallClock, utcnow
from lngate.store import Database
from lngate.store.payee_keys import get_payee_key, store_payee_key

log = structlog.get_logger("lngate.validation")


class PayeeKeys:
    """Known node keys by provider name (pinned, or learned and shared through ``db``)."""

    def __init__(self, pinned: dict[str, str] | None = None, *, db: Database | None = None,
                 clock: WallClock = utcnow) -> None:
        self._keys = {name: key.lower() for name, key in (pinned or {}).items()}
        self._pinned = set(self._keys)
        self._db = db
        self._clock = clock
        self._disagreeing: dict[str, str] = {}
        """The last key each provider reported against its pinned one (logged once)."""

    def pinned(self, provider: str) -> str | None:
        """The key known in this process (pinned, or learned already), without asking the
        database."""
        return self._keys.get(provider)

    async def expected(self, provider: str) -> str | None:
        """The key this provider's invoices must be signed by, if known yet (here or by any
        instance sharing the database)."""
        key = self._keys.get(provider)
        if key is None and self._db is not None:
            async with self._db.connect() as conn:
                key = await get_payee_key(conn, provider)
            if key is not None:
                self._keys[provider] = key
        return key

    def pin(self, provider: str, key: str) -> None:
        """Set the provider's key from a trusted source (settings, the test provider)."""
        self._keys[provider] = key.lower()
        self._pinned.add(provider)

    def report(self, provider: str, key: str) -> None:
        """The provider says its node key is ``key`` (a health probe, ``lngate check``): taken
        unless a key was pinned in settings, which wins; a disagreement is logged as an error,
        since invoices signed by the reported key will then be refused (once per key reported,
        not at every probe: the same report comes back every probe interval). The leader probes and
        stores each probe with the reported key; the other instances apply the stored probes,
        so every instance takes the same key."""
        key = key.lower()
        known = self._keys.get(provider)
        if known == key:
            return
        if provider in self._pinned:
            if self._disagreeing.get(provider) != key:
                self._disagreeing[provider] = key
                log.error("payee_key_mismatch", provider=provider, pinned=known, reported=key)
            return
        self._keys[provider] = key
        log.info("payee_key_reported", provider=provider, node_pubkey=key)

    async def learn(self, provider: str, key: str) -> None:
        """Remember the key of the first valid invoice from a provider with no known key.

        Raises :class:`InvalidInvoice` when another instance learned a different key first:
        the invoice just validated was signed by a key the gateway does not trust.
        """
        key = key.lower()
        if provider in self._keys:
            return
        if self._db is not None:
            async with self._db.transaction() as conn:
                stored = await store_payee_key(conn, provider, key, learned_at=self._clock())
            if stored != key:
                self._keys[provider] = stored
                raise InvalidInvoice(
                    f"payee {key} is not the node key {stored} learned first for this provider",
                    provider=provider)
        self._keys[provider] = key
        log.warning("payee_key_learned", provider=provider, node_pubkey=key,
                    hint="pin it in settings to check the very first invoice too")
