"""Root fixtures. Peer fixtures (real LNbits, Nostr relay + NWC wallet, SMTP) live in
``tests/peers`` and are started once per test session; database fixtures in
``tests/databases.py``. ``pytester`` runs inner test sessions (tests/test_service_checks.py)."""

pytest_plugins = ["tests.databases", "tests.peers.fixtures", "pytester"]
