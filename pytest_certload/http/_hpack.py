"""HPACK decoding (RFC 7541) of the fast backend's HTTP/2 responses, on ``hpack``'s tables.

``hpack`` (python-hyper) encodes our requests, and its static table
(``hpack.table.HeaderTable.STATIC_TABLE``) and Huffman decoder
(``hpack.huffman_table.decode_huffman``) are used here. What this module adds is the
decoding of header blocks: the connection's dynamic table as a list of byte pairs, the
representations of RFC 7541 §6 read in one loop, plain tuples out, and Huffman-coded
strings that repeat (a ``date``, a ``server``) decoded once. ``hpack.Decoder`` makes an
object and a log call per field: on the reference double's responses (13 fields, two or
three of them new literals each time) it took ~100 µs per response on the reference
machine, a third of the fast backend's whole HTTP/2 request. It stays the reference this
decoder is tested against (``tests/unit/test_hpack_decoder.py``).
"""

from __future__ import annotations

from hpack import HPACKDecodingError
from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

__all__ = ["HeaderDecoder"]

_STATIC = HeaderTable.STATIC_TABLE
_STATIC_LEN = len(_STATIC)
#: an entry's size is its name's and value's lengths plus 32 (RFC 7541 §4.1)
_ENTRY_OVERHEAD = 32
_STRING_CACHE_LIMIT = 512


class HeaderDecoder:
    """One connection's HPACK decoding context (RFC 7541 §2.2).

    ``allowed`` is the table size we announced (SETTINGS_HEADER_TABLE_SIZE; 4096 unless
    we send one); ``max_list`` bounds a decoded header list (SETTINGS_MAX_HEADER_LIST_SIZE).
    Errors raise ``hpack.HPACKDecodingError`` (an HTTP/2 COMPRESSION_ERROR).
    """

    __slots__ = ("allowed", "max_list", "max_size", "size", "strings", "table")

    def __init__(self, allowed: int = 4096, max_list: int = 65_536) -> None:
        #: the dynamic table, newest entry first (index 62 is ``table[0]``)
        self.table: list[tuple[bytes, bytes]] = []
        self.size = 0
        self.max_size = allowed
        self.allowed = allowed
        self.max_list = max_list
        #: Huffman-coded strings already decoded, by their code
        self.strings: dict[bytes, bytes] = {}

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        """The header list of one complete header block, in order."""
        out: list[tuple[bytes, bytes]] = []
        total = 0
        pos, n = 0, len(block)
        try:
            while pos < n:
                b = block[pos]
                if b & 0x80:  # indexed field (§6.1)
                    index = b & 0x7F
                    pos += 1
                    if index == 0x7F:
                        index, pos = _continued(block, pos, index)
                    field = self._get(index)
                elif b & 0x40:  # literal with incremental indexing (§6.2.1)
                    index = b & 0x3F
                    pos += 1
                    if index == 0x3F:
                        index, pos = _continued(block, pos, index)
                    if index:
                        name = self._get(index)[0]
                    else:
                        name, pos = self._string(block, pos)
                    value, pos = self._string(block, pos)
                    field = (name, value)
                    self._add(name, value)
                elif b & 0x20:  # dynamic table size update (§6.3)
                    size = b & 0x1F
                    pos += 1
                    if size == 0x1F:
                        size, pos = _continued(block, pos, size)
                    if size > self.allowed:
                        raise HPACKDecodingError(
                            f"a table size update to {size}, above the {self.allowed} allowed"
                        )
                    self.max_size = size
                    self._shrink()
                    continue
                else:  # literal without indexing (§6.2.2) or never indexed (§6.2.3)
                    index = b & 0x0F
                    pos += 1
                    if index == 0x0F:
                        index, pos = _continued(block, pos, index)
                    if index:
                        name = self._get(index)[0]
                    else:
                        name, pos = self._string(block, pos)
                    value, pos = self._string(block, pos)
                    field = (name, value)
                total += len(field[0]) + len(field[1]) + _ENTRY_OVERHEAD
                if total > self.max_list:
                    raise HPACKDecodingError(
                        f"a header list over the {self.max_list} bytes allowed"
                    )
                out.append(field)
        except IndexError:
            raise HPACKDecodingError("a header block that ends inside a field") from None
        return out

    def _get(self, index: int) -> tuple[bytes, bytes]:
        if index <= _STATIC_LEN:
            if not index:
                raise HPACKDecodingError("index 0")
            return _STATIC[index - 1]
        dynamic = index - _STATIC_LEN - 1
        if dynamic >= len(self.table):
            raise HPACKDecodingError(
                f"index {index}, beyond the table's {_STATIC_LEN + len(self.table)} entries"
            )
        return self.table[dynamic]

    def _string(self, block: bytes, pos: int) -> tuple[bytes, int]:
        """A string literal (§5.2) at ``pos``: its bytes and where the next field starts."""
        huffman = block[pos] & 0x80
        length = block[pos] & 0x7F
        pos += 1
        if length == 0x7F:
            length, pos = _continued(block, pos, length)
        end = pos + length
        if end > len(block):
            raise HPACKDecodingError("a string literal longer than its header block")
        raw = block[pos:end]
        if huffman:
            text = self.strings.get(raw)
            if text is None:
                text = decode_huffman(raw)
                if len(self.strings) >= _STRING_CACHE_LIMIT:
                    self.strings.clear()
                self.strings[raw] = text
            return text, end
        return raw, end

    def _add(self, name: bytes, value: bytes) -> None:
        """Insert at the front, evicting from the end to fit (§4.4)."""
        size = len(name) + len(value) + _ENTRY_OVERHEAD
        if size > self.max_size:
            self.table.clear()
            self.size = 0
            return
        self.table.insert(0, (name, value))
        self.size += size
        self._shrink()

    def _shrink(self) -> None:
        table = self.table
        while self.size > self.max_size:
            name, value = table.pop()
            self.size -= len(name) + len(value) + _ENTRY_OVERHEAD


def _continued(block: bytes, pos: int, value: int) -> tuple[int, int]:
    """The rest of an integer whose prefix was full (§5.1): 7-bit groups, low first."""
    shift = 0
    while True:
        b = block[pos]
        pos += 1
        value += (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise HPACKDecodingError("an integer over 2^28 in a header block")
