"""Tests of lngate.bolt11 against the BOLT11 specification and the reference bolt11 package."""
