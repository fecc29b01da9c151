"""A rate limit's notation: what the settings accept is what the limiter applies, read as the
``limits`` library reads it (the Redis path), and nothing the library would apply otherwise."""

from __future__ import annotations

import pytest
from limits import parse

from lngate.rate_limit_notation import parse_limit


@pytest.mark.parametrize("text", [
    "60/minute", "1000000/second", "10 per 2 hours", "5/MINUTE", "3 per day", "1 per second",
    "  4 / 3 minutes ", "10/hours", "2 per 1 day", "10per second",
])
def test_an_accepted_limit_is_read_as_the_limits_library_reads_it(text: str) -> None:
    limit = parse_limit(text)
    assert (limit.amount, limit.period) == (parse(text).amount, parse(text).get_expiry())
    assert limit.text == text.strip()


@pytest.mark.parametrize("text", [
    "1/second;5/minute",  # the library applies the first and drops the second
    "1/second|2/day", "1/second,2/day", "1/second;",
    "0/minute",  # every request refused
    "7/0second",  # the library reads a zero multiple as one
    "1/month", "2/years",  # windows the counters are not made for
])
def test_what_the_library_reads_otherwise_than_written_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        parse_limit(text)


@pytest.mark.parametrize("text", [
    "", "abc", "10/fortnight", "10 minute", "1/1/second", "10/sec", "10/hourss", "-1/second",
    "1.5/second", "1/second; drop table",
])
def test_anything_else_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="looks like '60/minute'"):
        parse_limit(text)
