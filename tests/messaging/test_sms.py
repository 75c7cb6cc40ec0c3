"""SMS segments as carriers count them: GSM-7 septets (extension characters take two, never split),
UCS-2 code units (an emoji takes two, never split)."""

from __future__ import annotations

import pytest

from engage.messaging.sms import sms_length


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # each takes two septets
        ("a" * 152 + "€" + "a" * 5, "GSM-7", 159, 1),
        ("a" * 152 + "€" + "a" * 10, "GSM-7", 164, 2),  # the € may not straddle: it opens segment 2
        ("Café ñandù à la carte", "GSM-7", 21, 1),
        ("Café ñandú", "UCS-2", 10, 1),  # ú is not GSM-7 (ù is)
        ("a" * 70 + "’", "UCS-2", 71, 2),  # one curly quote makes it all UCS-2
        ("é" * 70, "GSM-7", 70, 1),
        ("ç" * 70, "UCS-2", 70, 1),  # ç is not GSM-7 (only Ç is)
        ("😀" * 35, "UCS-2", 70, 1),
        ("a" * 66 + "😀" + "a" * 40, "UCS-2", 108, 2),
        ("a" * 200 + "😀", "UCS-2", 202, 4),
    ],
)
def test_segments(text: str, encoding: str, units: int, segments: int) -> None:
    length = sms_length(text)
    assert (length.encoding, length.units, length.segments) == (encoding, units, segments)


def test_a_surrogate_pair_is_never_split() -> None:
    # 66 units, then an emoji (2): 68 > 67, so the emoji opens the second segment.
    assert sms_length("a" * 66 + "😀" + "a" * 67).segments == 3
    assert str(sms_length("hi")) == "1 segment (GSM-7, 2 septets)"
