"""HTTP/1.1 message framing shared by the apps' server (``_server``) and client (``_outbound``).

Only what crosses a sidecar hop here: a head of CRLF lines, a body framed by
``Content-Length``, ``Transfer-Encoding: chunked`` (Envoy sends a body of unknown
length that way) or, for a response only, the end of the connection (RFC 9112 §6.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

MAX_HEAD = 64 * 1024


class WireError(ValueError):
    """Bytes that are not an HTTP/1.x message we can frame."""


class Framing(Enum):
    LENGTH = "length"
    CHUNKED = "chunked"
    UNTIL_CLOSE = "until-close"


@dataclass(frozen=True, slots=True)
class Head:
    """A parsed request or response head; ``size`` is its length in bytes with the CRLFCRLF."""

    size: int
    method: str
    target: str
    status: int
    headers: list[tuple[str, str]]  # names lower-cased, in arrival order
    keep_alive: bool
    framing: Framing
    length: int


def parse_head(buf: bytearray, *, response: bool, request_method: str = "GET") -> Head | None:
    """The head at the start of ``buf``, or None while it is incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_HEAD:
            raise WireError(f"head longer than {MAX_HEAD} bytes")
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    first = lines[0].split(" ", 2)
    if len(first) < 2:
        raise WireError(f"bad start line {lines[0]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise WireError(f"bad header line {line!r}")
        headers.append((name.lower(), value.strip()))
    if response:
        version, method, target = first[0], request_method, ""
        try:
            status = int(first[1])
        except ValueError:
            raise WireError(f"bad status line {lines[0]!r}") from None
    else:
        if len(first) != 3:
            raise WireError(f"bad request line {lines[0]!r}")
        method, target, version = first
        status = 0
    if not version.startswith("HTTP/1."):
        raise WireError(f"not HTTP/1.x: {lines[0]!r}")
    tokens = {t.strip().lower() for n, v in headers if n == "connection" for t in v.split(",")}
    keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    framing, length = _framing(headers, response=response, status=status, method=method)
    if framing is Framing.UNTIL_CLOSE:
        keep_alive = False
    return Head(end + 4, method, target, status, headers, keep_alive, framing, length)


def _framing(
    headers: list[tuple[str, str]], *, response: bool, status: int, method: str
) -> tuple[Framing, int]:
    if response and (status < 200 or status in (204, 304) or method == "HEAD"):
        return Framing.LENGTH, 0
    codings = [v for n, v in headers if n == "transfer-encoding"]
    if codings:
        if codings[-1].split(",")[-1].strip().lower() != "chunked":
            if response:
                return Framing.UNTIL_CLOSE, -1
            raise WireError("a request body must end with chunked coding")
        return Framing.CHUNKED, -1
    lengths = {v for n, v in headers if n == "content-length"}
    if len(lengths) > 1:
        raise WireError(f"conflicting Content-Length values {sorted(lengths)}")
    if lengths:
        raw = lengths.pop()
        if not raw.isdigit():
            raise WireError(f"bad Content-Length {raw!r}")
        return Framing.LENGTH, int(raw)
    return (Framing.UNTIL_CLOSE, -1) if response else (Framing.LENGTH, 0)


class BodyReader:
    """Collects one body; :meth:`feed` returns it once complete (leftover in ``rest``)."""

    def __init__(self, framing: Framing, length: int) -> None:
        self.framing = framing
        self.length = length
        self.data = bytearray()
        self.rest = b""
        self._pos = 0  # chunked: where the next chunk-size line starts in ``data``
        self._out = bytearray()

    @property
    def until_close(self) -> bool:
        return self.framing is Framing.UNTIL_CLOSE

    def feed(self, chunk: bytes) -> bytes | None:
        if self.framing is Framing.LENGTH:
            if not self.data and len(chunk) >= self.length:
                self.rest = chunk[self.length :]
                return chunk[: self.length]
            self.data += chunk
            if len(self.data) < self.length:
                return None
            self.rest = bytes(self.data[self.length :])
            return bytes(self.data[: self.length])
        self.data += chunk
        if self.framing is Framing.UNTIL_CLOSE:
            return None
        return self._dechunk()

    def close(self) -> bytes:
        """The body of an until-close response, at the end of the connection."""
        return bytes(self.data)

    def _dechunk(self) -> bytes | None:
        buf = self.data
        while True:
            eol = buf.find(b"\r\n", self._pos)
            if eol < 0:
                return None
            size_text = bytes(buf[self._pos : eol]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise WireError(f"bad chunk size {size_text!r}") from None
            if size == 0:
                # Trailers, if any, end with an empty line; without them it is "0\r\n\r\n".
                end = buf.find(b"\r\n\r\n", eol) if buf[eol + 2 : eol + 4] != b"\r\n" else eol
                if end < 0:
                    return None
                self.rest = bytes(buf[end + 4 :])
                return bytes(self._out)
            start = eol + 2
            if len(buf) < start + size + 2:
                return None
            self._out += buf[start : start + size]
            self._pos = start + size + 2
