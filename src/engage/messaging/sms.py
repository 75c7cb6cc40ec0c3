"""How many SMS segments a text costs (3GPP TS 23.038 and 23.040), as carriers bill it.

A text of GSM-7 characters takes 160 septets in one segment, 153 per segment when it is split (the rest is
the concatenation header); a character of the GSM extension table (`€`, `[`, `{`, …) takes two septets that
are never split across segments. One character outside GSM-7 (an emoji, a curly quote) turns the whole
text into UCS-2: 70 UTF-16 code units in one segment, 67 per segment split, a surrogate pair never split.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SmsLength", "sms_length"]

_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsLength:
    encoding: str
    """`GSM-7` or `UCS-2`."""
    units: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2)."""
    segments: int

    def __str__(self) -> str:
        plural = "" if self.segments == 1 else "s"
        unit = "septets" if self.encoding == "GSM-7" else "UTF-16 units"
        return f"{self.segments} segment{plural} ({self.encoding}, {self.units} {unit})"


def sms_length(text: str) -> SmsLength:
    if all(char in _GSM7 or char in _GSM7_EXTENSION for char in text):
        sizes = [2 if char in _GSM7_EXTENSION else 1 for char in text]
        return SmsLength("GSM-7", sum(sizes), _segments(sizes, 160, 153))
    sizes = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return SmsLength("UCS-2", sum(sizes), _segments(sizes, 70, 67))


def _segments(sizes: list[int], single: int, part: int) -> int:
    total = sum(sizes)
    if total <= single:
        return 1
    segments, used = 1, 0
    for size in sizes:  # a character's units stay together in one segment
        if used + size > part:
            segments, used = segments + 1, 0
        used += size
    return segments
