"""Lab 2's checker, the pure part: the answer is an md5, in any case, and nothing else."""

from __future__ import annotations

from lab.labs.lab02_trace import normalise_md5


def test_normalise_md5_accepts_32_hex_digits_only() -> None:
    assert normalise_md5(" 6980C3448B097CBBF594992EB6C82756\n") == "6980c3448b097cbbf594992eb6c82756"
    assert normalise_md5("6980c344") is None
    assert normalise_md5("z" * 32) is None
