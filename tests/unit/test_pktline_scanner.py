"""The pkt-line scanner that counts a fetch request's `have` lines, fed in pieces of any size."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitward.gitstore.pktline import NotPktLines, PktLineScanner, pkt

OID = "0123456789abcdef0123456789abcdef01234567"
SHA256 = "ab" * 32


def _stream() -> tuple[bytes, int]:
    lines = [
        pkt(f"want {OID} multi_ack_detailed side-band-64k\n".encode()), b"0000",
        pkt(f"have {OID}\n".encode()), pkt(f"want {OID}\n".encode()),
        pkt(f"have {SHA256}\n".encode()),  # SHA-256 ids: the general path
        pkt(b"command=fetch\n"), b"0001", pkt(b"thin-pack\n"),
        pkt(b"agent=have this is not a have line\n"),
        *(pkt(f"have {OID}\n".encode()) for _ in range(5)),
        pkt(b"have"),  # too short to be one
        pkt(b"done\n"), b"0000", b"0002",
    ]
    return b"".join(lines), 7


def _scan(data: bytes, cuts: list[int]) -> PktLineScanner:
    scanner = PktLineScanner()
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        scanner.feed(data[start:cut])
        start = cut
    return scanner


def test_every_split_counts_the_same() -> None:
    data, haves = _stream()
    for cut in range(len(data) + 1):
        scanner = _scan(data, [cut])
        assert (scanner.haves, scanner.complete) == (haves, True), cut


@given(st.lists(st.integers(min_value=0, max_value=len(_stream()[0])), max_size=30))
def test_any_pieces_count_the_same(cuts: list[int]) -> None:
    data, haves = _stream()
    scanner = _scan(data, cuts)
    assert (scanner.haves, scanner.complete) == (haves, True)


def test_a_stream_cut_mid_packet_is_not_complete() -> None:
    data, _ = _stream()
    assert not _scan(data[:-7], []).complete


@pytest.mark.parametrize("bad", [b"zzzz", b"0003", b"0x12abcd", b" 12a", b"+012", b"fff1" + b"x" * 9])
def test_what_is_not_pkt_lines_is_refused(bad: bytes) -> None:
    with pytest.raises(NotPktLines):
        PktLineScanner().feed(pkt(b"want x\n") + bad)
