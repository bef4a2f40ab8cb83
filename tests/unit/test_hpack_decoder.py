"""The fast backend's HPACK decoder against ``hpack``'s, on ``hpack``'s encoder's output.

Thousands of seeded header lists (repeated and unique fields, Huffman and raw strings,
never-indexed fields, values too large for the table, indexes past 127, table size
updates) are encoded by one ``hpack.Encoder`` and decoded, block by block, by
``hpack.Decoder`` and by ``HeaderDecoder``: the two must agree on every list and on the
table they end with. Malformed blocks are refused with ``HPACKDecodingError``.
"""

from __future__ import annotations

import random

import pytest
from hpack import Decoder, Encoder, HPACKDecodingError, NeverIndexedHeaderTuple

from pytest_certload.http._hpack import HeaderDecoder

NAMES = [
    b"content-type",
    b"date",
    b"x-request-id",
    b"replay-nonce",
    b"server",
    b"x-a",
    b"cache-control",
    b"link",
]
COMMON = [b"application/json", b"no-store", b"nginx/1.22.1", b"Mon, 30 Nov 2026"]
ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123456789-_"


def _value(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.4:  # a value seen before
        return rng.choice(COMMON)
    if kind < 0.9:  # unique, as a nonce or a request id
        return bytes(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
    return bytes(rng.randrange(256) for _ in range(rng.randint(200, 5000)))  # beyond the table


@pytest.mark.parametrize("seed", range(3))
def test_every_block_decodes_as_hpack_decodes_it(seed: int) -> None:
    rng = random.Random(seed)
    encoder, reference, ours = Encoder(), Decoder(), HeaderDecoder()
    reference.max_header_list_size = ours.max_list = 1 << 20
    for i in range(300):
        if i % 61 == 30:  # the encoder's table shrinks, then grows back: size updates
            encoder.header_table_size = rng.choice([0, 256, 1024, 4096])
        fields: list[tuple[bytes, bytes]] = [(b":status", rng.choice([b"200", b"404", b"201"]))]
        for _ in range(rng.randint(0, 14)):
            name = rng.choice(NAMES) if rng.random() < 0.8 else f"x-{rng.randrange(300)}".encode()
            field = (name, _value(rng))
            fields.append(NeverIndexedHeaderTuple(*field) if rng.random() < 0.1 else field)  # type: ignore[arg-type]
        block = encoder.encode(fields, huffman=rng.random() < 0.8)
        expected = [(bytes(n), bytes(v)) for n, v in reference.decode(block, raw=True)]
        assert ours.decode(block) == expected, (seed, i)
        assert ours.table == list(reference.header_table.dynamic_entries), (seed, i)


def test_indexes_past_127_are_read_in_several_bytes() -> None:
    encoder, ours = Encoder(), HeaderDecoder()
    many = [(f"x-{i}".encode(), b"v") for i in range(110)]  # 110 small entries fit in 4096
    ours.decode(encoder.encode(many))
    again = encoder.encode(many[:3])  # the oldest: dynamic indexes near 171
    assert any(b == 0xFF for b in again)
    assert ours.decode(again) == many[:3]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (b"\x80", "index 0"),
        (b"\xbf", "index 63, beyond the table's 61 entries"),
        (b"\x40", "a header block that ends inside a field"),
        (b"\x40\x85ab", "a string literal longer than its header block"),
        (b"\x40\x01a\x7f\x7f\x7f", "a string literal longer than its header block"),
        (b"\x3f\xe1\x1f", "a table size update to 4096"),
        (b"\xff\xff\xff\xff\xff\xff\x01", "an integer over 2^28"),
    ],
)
def test_malformed_blocks_are_refused(block: bytes, message: str) -> None:
    with pytest.raises(HPACKDecodingError) as info:
        HeaderDecoder(allowed=4095).decode(block)
    assert message in str(info.value)


def test_a_header_list_over_the_limit_is_refused() -> None:
    block = Encoder().encode([(b"x-big", b"v" * 2000)])
    with pytest.raises(HPACKDecodingError, match="a header list over the 1000 bytes allowed"):
        HeaderDecoder(max_list=1000).decode(block)
