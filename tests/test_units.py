"""Durations and sizes as people write them; ranges are Config's (tests/test_config.py)."""

from __future__ import annotations

import math

import pytest

from gcs_model_sync.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("60", 60.0),
        ("0.3", 0.3),
        (" 10 ", 10.0),
        ("0", 0.0),
        ("1e3", 1000.0),
        ("500ms", 0.5),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("2d", 172800.0),
        ("1d2h3m4s5ms", 93784.005),
        (".5s", 0.5),
        ("-5m", -300.0),
    ],
)
def test_durations_take_seconds_or_go_style_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["inf", "nan", "-inf", "1e300"])
def test_durations_leave_non_finite_and_huge_values_to_the_range_check(text: str) -> None:
    value = parse_duration(text)
    assert math.isnan(value) or abs(value) >= 1e300


@pytest.mark.parametrize("text", ["", "abc", "5x", "1h30", "h", "5 m", "1e3s", "5M", "1..5s"])
def test_bad_durations_say_which_forms_work(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a duration: .* \(seconds, or 500ms, 90s, 5m"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("512", 512),
        ("100B", 100),
        ("500k", 500 * 1024),
        ("500K", 500 * 1024),
        ("10M", 10 * 1024**2),
        ("10Mi", 10 * 1024**2),
        ("10MiB", 10 * 1024**2),
        ("10MB", 10 * 1024**2),
        ("10 M", 10 * 1024**2),
        ("1G", 1024**3),
        ("1Gi", 1024**3),
        ("1.5G", 3 * 1024**3 // 2),
        ("2T", 2 * 1024**4),
        ("1P", 1024**5),
        ("1e3", 1000),
        ("-1", -1),
    ],
)
def test_sizes_count_in_powers_of_1024_however_spelled(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "abc", "M", "10X", "1..5G", "nan", "inf", "10I", "1e400"])
def test_bad_sizes_say_which_forms_work(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a size: .*10Mi"):
        parse_size(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(604800, "7d"), (5400, "1h30m"), (60, "1m"), (90061, "1d1h1m1s"), (0.3, "0.3"), (0, "0")],
)
def test_durations_are_shown_in_the_form_they_are_written(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("size", "text"), [(1024**5, "1P"), (1536, "1536"), (0, "0"), (3 * 1024**2, "3M")]
)
def test_sizes_are_shown_in_the_form_they_are_written(size: int, text: str) -> None:
    assert format_size(size) == text
    assert parse_size(text) == size
