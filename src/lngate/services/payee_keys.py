"""The node public key each provider's invoices must be signed by.

A valid signature alone proves nothing: most invoices carry no payee field, so the payee is
recovered from the signature and a tampered invoice simply recovers to another key. The check
means something only against a known key: pinned in settings, reported by the provider (NWC
``get_info``, the test provider's own key), or learned from the first valid invoice
(trust on first use, logged).
"""

from __future__ import annotations

import structlog

log = structlog.get_logger("lngate.validation")


class PayeeKeys:
    """Known node keys by provider name."""

    def __init__(self, pinned: dict[str, str] | None = None) -> None:
        self._keys = {name: key.lower() for name, key in (pinned or {}).items()}
        self._pinned = set(self._keys)

    def expected(self, provider: str) -> str | None:
        """The key this provider's invoices must be signed by, if known yet."""
        return self._keys.get(provider)

    def pin(self, provider: str, key: str) -> None:
        """Set the provider's key from a trusted source (settings, the test provider)."""
        self._keys[provider] = key.lower()
        self._pinned.add(provider)

    def report(self, provider: str, key: str) -> None:
        """The provider says its node key is ``key`` (a health probe, ``lngate check``): taken
        unless a key was pinned in settings, which wins; a disagreement is logged as an error,
        since invoices signed by the reported key will then be refused."""
        key = key.lower()
        known = self._keys.get(provider)
        if known == key:
            return
        if provider in self._pinned:
            log.error("payee_key_mismatch", provider=provider, pinned=known, reported=key)
            return
        self._keys[provider] = key
        log.info("payee_key_reported", provider=provider, node_pubkey=key)

    def learn(self, provider: str, key: str) -> None:
        """Remember the key of the first valid invoice from a provider with no known key."""
        if provider not in self._keys:
            self._keys[provider] = key.lower()
            log.warning("payee_key_learned", provider=provider, node_pubkey=key,
                        hint="pin it in settings to check the very first invoice too")
