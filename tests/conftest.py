"""Root fixtures. Peer fixtures (real LNbits, Nostr relay + NWC wallet, SMTP) live in
``tests/peers`` and are started once per test session."""

pytest_plugins = ["tests.databases", "tests.peers.fixtures"]
