"""Fixtures shared by the provider tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs


@pytest.fixture
def debug_logs() -> Iterator[list[dict[str, Any]]]:
    """Every structlog event, DEBUG included, as captured dicts (``log_level``, ``event``, ...)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        structlog.reset_defaults()
