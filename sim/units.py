"""Units: the one place where "512Mi", "250ms", "300/s" and "99.9%" become numbers.

Base units are bytes, seconds, events per second and fractions (0..1). A plain number in a
scenario is taken in the base unit. Binary suffixes (Ki, Mi, Gi, Ti) are powers of 1024 as in
Kubernetes quantities; decimal suffixes (k, K, M, G, T) are powers of 1000, also as in Kubernetes
(``resource.Quantity``). Every parser raises ``ValueError`` with a message fit for a user.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal

_BYTE_SUFFIXES = {
    "": 1,
    "B": 1,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
}
_DURATION_SUFFIXES = {
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
}
_RATE_PERIODS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}

_NUMBER = r"(-?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_BYTES_RE = re.compile(rf"^{_NUMBER}\s*([A-Za-z]*)$")
_DURATION_RE = re.compile(rf"^{_NUMBER}\s*([a-z]+)$")
_RATE_RE = re.compile(rf"^{_NUMBER}\s*/\s*([a-z]+)$")
_PERCENT_RE = re.compile(rf"^{_NUMBER}\s*%$")


def _finite(value: float, what: str) -> float:
    if isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _quantity(
    value: object,
    what: str,
    example: str,
    pattern: re.Pattern[str],
    scales: Mapping[str, float],
    unit_word: str,
    known: str,
    unit_prefix: str = "",
) -> float:
    """Parse a non-negative number with an optional unit suffix into base units."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = _finite(value, what)
    elif isinstance(value, str) and (match := pattern.match(value.strip())):
        unit = match.group(2)
        if unit not in scales:
            raise ValueError(
                f"unknown {unit_word} '{unit_prefix}{unit}' in {value!r} (use {known})"
            )
        number = float(match.group(1)) * scales[unit]
    else:
        raise ValueError(f"expected {what} such as {example}, got {value!r}")
    if number < 0:
        raise ValueError(f"{what} cannot be negative, got {value!r}")
    return number


def parse_bytes(value: object) -> int:
    """Parse a memory quantity ("512Mi", "2Gi", "100M", 1048576) into bytes."""
    return int(
        _quantity(
            value,
            "a memory size",
            "'512Mi' or '2Gi'",
            _BYTES_RE,
            _BYTE_SUFFIXES,
            "memory unit",
            "B, Ki, Mi, Gi, Ti, k, M, G or T",
        )
    )


def parse_duration(value: object) -> float:
    """Parse a duration ("250ms", "5m", "1h", "2s", 0.5) into seconds."""
    return _quantity(
        value,
        "a duration",
        "'250ms' or '5m'",
        _DURATION_RE,
        _DURATION_SUFFIXES,
        "time unit",
        "us, ms, s, m or h",
    )


def parse_rate(value: object) -> float:
    """Parse a rate ("300/s", "1000/m", 12.5) into events per second."""
    per_second = {unit: 1.0 / seconds for unit, seconds in _RATE_PERIODS.items()}
    return _quantity(
        value, "a rate", "'300/s'", _RATE_RE, per_second, "rate unit", "/s, /m or /h", "/"
    )


def parse_fraction(value: object) -> float:
    """Parse a percentage ("99.9%") or a plain fraction (0.999) into a fraction in [0, 1]."""
    if isinstance(value, str):
        match = _PERCENT_RE.match(value.strip())
        if not match:
            raise ValueError(f"expected a percentage such as '99.9%' or a fraction, got {value!r}")
        # Decimal, so that '99.9%' is exactly the float 0.999 (binary division gives 0.999...01)
        fraction = float(Decimal(match.group(1)) / 100)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        fraction = _finite(value, "a fraction")
        if fraction > 1:
            raise ValueError(
                f"{value!r} is more than 1: write a percentage as a string ('{value}%') "
                "or a fraction between 0 and 1"
            )
    else:
        raise ValueError(f"expected a percentage such as '99.9%' or a fraction, got {value!r}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"a fraction must lie between 0 and 1 (0% and 100%), got {value!r}")
    return fraction


def format_bytes(value: float) -> str:
    """Format bytes the way Kubernetes and the kernel log talk: "512Mi", "1.5Gi", "300B"."""
    for suffix, scale in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if abs(value) >= scale:
            return f"{value / scale:.4g}{suffix}"
    return f"{int(value)}B"


def format_duration(seconds: float) -> str:
    """Format seconds compactly: "250ms", "12s", "5m", "1h30m"."""
    if seconds < 1:
        return f"{seconds * 1000:.4g}ms"
    if seconds < 60:
        return f"{seconds:.4g}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}m" + (f"{secs:.3g}s" if secs else "")
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}h" + (f"{int(minutes)}m" if minutes else "")


def parse_cpu(value: object) -> float:
    """Parse a CPU quantity ("500m", "2", 1.5) into cores, as Kubernetes does."""
    if isinstance(value, str) and value.strip().endswith("m"):
        try:
            millicores = float(value.strip()[:-1])
        except ValueError:
            millicores = -1.0
        if millicores >= 0:
            return millicores / 1000.0
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(
                f"expected a CPU quantity such as '500m' or '2', got {value!r}"
            ) from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        cores = _finite(value, "a CPU quantity")
        if cores < 0:
            raise ValueError(f"a CPU quantity cannot be negative, got {value!r}")
        return cores
    raise ValueError(f"expected a CPU quantity such as '500m' or '2', got {value!r}")
