"""Real peers (LNbits, ...) that the test suite installs and starts itself."""
