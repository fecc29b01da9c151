"""Tests of :mod:`lngate.tasks`."""
