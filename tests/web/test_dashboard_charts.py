"""The dashboard's server-drawn SVG charts and the back office's writing of numbers: a scale
that rounds up, one bar per period, escaped text, nothing the page's CSP would block."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from lngate.web.admin_format import AdminFormat
from lngate.web.charts import Bar, bar_chart, nice_top
from lngate.web.i18n import Translator

FR, EN = AdminFormat(Translator("fr")), AdminFormat(Translator("en"))


def test_the_scale_rounds_up_to_a_readable_top() -> None:
    """The top of the scale is the next 1, 2, 2.5 or 5 times a power of ten (1 when empty)."""
    assert [nice_top(v) for v in (0, 0.3, 1, 3, 7, 12, 21, 240, 260, 999_001)] == [
        1, 0.5, 1, 5, 10, 20, 25, 250, 500, 1_000_000]


def test_a_chart_draws_one_bar_per_period_scaled_to_the_top() -> None:
    """Each period has a tooltip; a non-empty one a bar whose height is its share of the top,
    with the inner series inside; labels every ``label_every`` periods."""
    bars = [Bar("00h", 10, 5, "tip 0"), Bar("01h", 0, None, "tip 1"), Bar("02h", 20, 20, "tip 2"),
            Bar("03h", 5, None, "tip 3")]
    svg = str(bar_chart(bars, title="Invoices", kind="volume", axis=FR.compact, label_every=2))
    assert svg.startswith('<svg class="chart volume"') and 'role="img"' in svg
    assert svg.count("<title>") == 5  # the chart's and one per period
    heights = [float(h) for h in re.findall(r'class="bar" [^>]*height="([\d.]+)"', svg)]
    assert len(heights) == 3 and heights[1] == 2 * heights[0] == 4 * heights[2]
    assert len(re.findall(r'class="inner"', svg)) == 2
    assert [m for m in re.findall(r'class="label"[^>]*>([^<]+)<', svg)] == ["00h", "02h"]
    assert re.findall(r'class="axis"[^>]*>([^<]+)<', svg) == ["0", "10", "20"]


def test_chart_text_is_escaped_and_carries_no_inline_style() -> None:
    """Titles and tooltips are escaped; colours come from classes, never a style attribute
    (the pages' CSP forbids inline styles)."""
    svg = str(bar_chart([Bar("<b>", 1, None, '"><script>x</script>')], title="a & <b>",
                        kind="revenue", axis=EN.compact))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a &amp; &lt;b&gt;" in svg
    assert "style" not in svg and "fill=" not in svg


def test_numbers_are_written_the_way_each_language_does() -> None:
    """Percentages, durations, counts and scale values: decimal comma and narrow spaces in
    French, point and commas in English; a dash for what is unknown."""
    assert FR.percent(99.5) == "99,50\u202f%" and EN.percent(99.5) == "99.50%"
    assert FR.percent(None) == EN.ms(None) == "—"
    assert FR.ms(12.34) == "12,3 ms" and EN.ms(250.4) == "250 ms" and FR.ms(1250) == "1,25 s"
    assert FR.number(1234567) == "1\u202f234\u202f567" and EN.number(1234567) == "1,234,567"
    assert FR.compact(400_000) == "400k" and FR.compact(1_250_000) == "1,2M"
    assert EN.compact(1_250_000) == "1.2M" and EN.compact(950) == "950"
    assert FR.when(datetime(2026, 5, 12, 14, 3, 7, tzinfo=UTC)) == "2026-05-12 14:03"
    assert FR.health("down") == "Hors service" and EN.breaker("half_open") == "half-open"
    assert FR.order_status("something new") == "something new"
