"""Peak-memory measurement of this process (Linux): reset the RSS high-water mark, read it back."""

from __future__ import annotations

import resource
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss_mib() -> float:
    return _status_kib("VmRSS") / 1024


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/self/clear_refs``); False if not possible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_mib() -> float:
    """The RSS high-water mark since the last ``reset_peak`` (or since the start)."""
    try:
        return _status_kib("VmHWM") / 1024
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakRSS:
    """``with PeakRSS() as m: ...`` then ``m.growth_mib``: how far RSS rose above its start."""

    def __enter__(self) -> PeakRSS:
        self.exact = reset_peak()
        self.start_mib = rss_mib()
        return self

    def __exit__(self, *exc) -> None:
        self.peak = peak_mib()
        self.growth_mib = self.peak - self.start_mib
