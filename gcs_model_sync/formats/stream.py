"""The bytes an extractor reads: a chunked archive stream with push-back, and gzip inflated
in large steps. Nothing here writes to disk (extract.Writer does)."""

from __future__ import annotations

import zlib
from typing import Protocol

from gcs_model_sync.errors import VersionRejected

COPY_CHUNK = 1024 * 1024


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Chunks(Protocol):
    """What Writer.file copies from: bytes, or views of a buffer that are never copied."""

    def read(self, size: int = -1, /) -> bytes | memoryview: ...


class Stream:
    """An archive as it downloads: member bytes as views of the chunks the source produced
    (they reach write() uncopied, so the GIL is free for the other staging threads), headers
    as exact reads, and push-back of bytes read past the end of a member."""

    def __init__(self, src: Readable, truncated: str) -> None:
        self.src = src
        self.truncated = truncated  # the error for an archive that stops too early
        self.chunk = memoryview(b"")
        self.pos = 0
        self.offset = 0  # archive bytes consumed, for messages

    def more(self) -> bool:
        """Is there anything left? Loads the next chunk once the current one is used up."""
        if self.pos < len(self.chunk):
            return True
        data = self.src.read(COPY_CHUNK)
        self.chunk, self.pos = memoryview(data), 0
        return bool(data)

    def read(self, n: int) -> memoryview:
        """Up to n bytes; empty at the end of the stream."""
        if not self.more():
            return self.chunk
        end = min(self.pos + n, len(self.chunk))
        view = self.chunk[self.pos : end]
        self.offset += end - self.pos
        self.pos = end
        return view

    def view(self, n: int) -> memoryview:
        """Between 1 and n bytes: the stream may not end here."""
        view = self.read(n)
        if not view:
            raise VersionRejected(f"{self.truncated} (the stream ends at byte {self.offset})")
        return view

    def exact(self, n: int) -> bytes:
        parts, left = [], n
        while left:
            view = self.view(left)
            parts.append(view)
            left -= len(view)
        return b"".join(parts)

    def skip(self, n: int) -> None:
        while n:
            n -= len(self.view(n))

    def peek(self, n: int) -> bytes:
        """Up to n bytes ahead, left unread; fewer only where the stream ends."""
        while len(self.chunk) - self.pos < n:
            data = self.src.read(COPY_CHUNK)
            if not data:
                break
            self.chunk, self.pos = memoryview(self.chunk[self.pos :].tobytes() + data), 0
        return self.chunk[self.pos : self.pos + n].tobytes()

    def unread(self, data: bytes) -> None:
        if data:
            self.chunk, self.pos = memoryview(data + self.chunk[self.pos :]), 0
            self.offset -= len(data)

    def drain(self) -> None:
        """Read to the very end (a tar.gz's gzip trailer is checked there)."""
        while self.src.read(COPY_CHUNK):
            pass


_GZIP = 16 + zlib.MAX_WBITS  # zlib parses the gzip header and checks its CRC-32 and length


class Gunzip:
    """A gzip stream inflated in 1 MiB steps; zlib checks each member's trailer.

    gzip.GzipFile reads through an 8 KiB buffer and computes the CRC in a Python loop: on a
    1 GiB model that is most of the extraction's CPU. Concatenated members and zero padding
    are accepted, as gzip(1) does; anything else after the last member is an error.
    """

    def __init__(self, src: Readable) -> None:
        self._src = src
        self._d = zlib.decompressobj(_GZIP)
        self._input = b""  # compressed bytes read ahead of the current decompressor
        self._done = False

    def read(self, size: int = -1, /) -> bytes:
        want = COPY_CHUNK if size < 0 else size
        while not self._done:
            d = self._d
            if d.eof:  # checked first: CPython may leave the leftover in unconsumed_tail too
                self._next_member(d.unused_data + self._input)
                continue
            if d.unconsumed_tail:
                out = d.decompress(d.unconsumed_tail, want)
            else:
                data, self._input = self._input or self._src.read(COPY_CHUNK), b""
                if not data:
                    raise EOFError("compressed stream ended before its end-of-stream marker")
                out = d.decompress(data, want)
            if out:
                return out
        return b""

    def _next_member(self, rest: bytes) -> None:
        while len(rest := rest.lstrip(b"\0")) < 2:
            more = self._src.read(COPY_CHUNK)
            if not more:
                if rest:
                    raise zlib.error("trailing garbage after the gzip stream")
                self._done = True
                return
            rest += more
        if not rest.startswith(b"\x1f\x8b"):
            raise zlib.error("trailing garbage after the gzip stream")
        self._d = zlib.decompressobj(_GZIP)
        self._input = rest
