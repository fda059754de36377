"""Units: exact values of "512Mi", "250ms", "300/s", "99.9%" and "500m", and the messages."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from sim import units


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512Mi", 536_870_912),
        ("2Gi", 2_147_483_648),
        ("1.5Gi", 1_610_612_736),
        ("512Ki", 524_288),
        ("100M", 100_000_000),
        ("4k", 4_000),
        ("300B", 300),
        (1_048_576, 1_048_576),
    ],
)
def test_parse_bytes(text: object, expected: int) -> None:
    """Binary suffixes are powers of 1024, decimal ones powers of 1000, as in Kubernetes."""
    assert units.parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("250ms", 0.25), ("500us", 0.0005), ("2s", 2.0), ("5m", 300.0), ("1h", 3600.0), (0.5, 0.5)],
)
def test_parse_duration(text: object, expected: float) -> None:
    """Durations become seconds; ``m`` is minutes, a plain number is already seconds."""
    assert units.parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("300/s", 300.0), ("1000/m", 1000 / 60), ("7200/h", 2.0), (12.5, 12.5)],
)
def test_parse_rate(text: object, expected: float) -> None:
    """Rates become events per second."""
    assert units.parse_rate(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("99.9%", 0.999), ("99.5%", 0.995), ("50%", 0.5), ("100%", 1.0), (0.5, 0.5), (1, 1.0)],
)
def test_parse_fraction(text: object, expected: float) -> None:
    """A percentage is exactly the fraction it names: "99.9%" is the float 0.999."""
    assert units.parse_fraction(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("500m", 0.5), ("250m", 0.25), ("2", 2.0), (1.5, 1.5)]
)
def test_parse_cpu(text: object, expected: float) -> None:
    """CPU quantities are cores; the ``m`` suffix is millicores, as in Kubernetes."""
    assert units.parse_cpu(text) == expected


@pytest.mark.parametrize(
    ("parse", "value", "message"),
    [
        (
            units.parse_bytes,
            "8Gb",
            "unknown memory unit 'Gb' in '8Gb' (use B, Ki, Mi, Gi, Ti, k, M, G or T)",
        ),
        (units.parse_bytes, True, "expected a memory size such as '512Mi' or '2Gi', got True"),
        (units.parse_bytes, -1, "a memory size cannot be negative, got -1"),
        (
            units.parse_duration,
            "10 parsecs",
            "unknown time unit 'parsecs' in '10 parsecs' (use us, ms, s, m or h)",
        ),
        (units.parse_duration, "-1s", "a duration cannot be negative, got '-1s'"),
        (units.parse_duration, -1, "a duration cannot be negative, got -1"),
        (units.parse_duration, True, "expected a duration such as '250ms' or '5m', got True"),
        (units.parse_duration, float("inf"), "a duration must be a finite number, got inf"),
        (units.parse_rate, "5/day", "unknown rate unit '/day' in '5/day' (use /s, /m or /h)"),
        (
            units.parse_fraction,
            "150%",
            "a fraction must lie between 0 and 1 (0% and 100%), got '150%'",
        ),
        (
            units.parse_fraction,
            99.9,
            "99.9 is more than 1: write a percentage as a string ('99.9%') "
            "or a fraction between 0 and 1",
        ),
        (
            units.parse_fraction,
            True,
            "expected a percentage such as '99.9%' or a fraction, got True",
        ),
        (units.parse_cpu, "lots", "expected a CPU quantity such as '500m' or '2', got 'lots'"),
    ],
)
def test_bad_quantity_message(
    parse: Callable[[object], object], value: object, message: str
) -> None:
    """A bad quantity raises ValueError whose message names the value and the accepted units."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse(value)


@pytest.mark.parametrize(
    ("value", "expected"), [(536_870_912, "512Mi"), (1_610_612_736, "1.5Gi"), (300, "300B")]
)
def test_format_bytes(value: int, expected: str) -> None:
    """Byte counts print the way Kubernetes and the kernel log write them."""
    assert units.format_bytes(value) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"), [(0.25, "250ms"), (12.0, "12s"), (300.0, "5m"), (5400.0, "1h30m")]
)
def test_format_duration(seconds: float, expected: str) -> None:
    """Durations print compactly in the largest sensible unit."""
    assert units.format_duration(seconds) == expected
