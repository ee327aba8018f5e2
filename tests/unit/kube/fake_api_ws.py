"""The server side of the exec websocket for the fake Kubernetes API (RFC 6455 framing and
the ``v4.channel.k8s.io`` / ``v5.channel.k8s.io`` channel protocols), standard library only.

Each message is a binary frame whose first byte is the channel: 0 stdin, 1 stdout,
2 stderr, 3 the error channel (a Status object with the exit code). ``v5`` adds channel
255, on which ``[255, n]`` closes channel ``n`` (the client's end of stdin).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import struct
import subprocess
import threading
from typing import IO, BinaryIO

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
V4 = "v4.channel.k8s.io"
V5 = "v5.channel.k8s.io"


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()


def pick_protocol(offered: str, allowed: tuple[str, ...]) -> str | None:
    for proto in (p.strip() for p in offered.split(",")):
        if proto in allowed:
            return proto
    return None


def send_frame(out: BinaryIO, payload: bytes, opcode: int = 0x2) -> None:
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack(">H", n)
    else:
        head += bytes([127]) + struct.pack(">Q", n)
    out.write(head + payload)
    out.flush()


def read_frame(inp: BinaryIO) -> tuple[int, bytes]:
    b0, b1 = inp.read(2)
    opcode = b0 & 0x0F
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack(">H", inp.read(2))
    elif n == 127:
        (n,) = struct.unpack(">Q", inp.read(8))
    mask = inp.read(4) if b1 & 0x80 else b"\0\0\0\0"
    data = bytes(c ^ mask[i % 4] for i, c in enumerate(inp.read(n)))
    return opcode, data


def exit_status(code: int) -> bytes:
    if code == 0:
        return json.dumps({"metadata": {}, "status": "Success"}).encode()
    return json.dumps(
        {
            "metadata": {},
            "status": "Failure",
            "message": f"command terminated with non-zero exit code: exit status {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
        }
    ).encode()


def read_stdin(inp: BinaryIO, protocol: str) -> bytes:
    """Client stdin until it closes the channel (v5) or after its first frame (v4)."""
    data = b""
    while True:
        opcode, payload = read_frame(inp)
        if opcode == 0x8:
            return data
        if not payload:
            continue
        if payload[0] == 0:
            data += payload[1:]
            if protocol == V4:
                return data
        elif payload[0] == 255 and protocol == V5:
            return data


def close(out: BinaryIO, conn: socket.socket) -> None:
    try:
        send_frame(out, struct.pack(">H", 1000), opcode=0x8)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def converse(inp: BinaryIO, out: BinaryIO, argv: list[str], *, timeout: float = 60.0) -> int:
    """Run ``argv`` as the exec'd command: stdin frames go to its stdin as they arrive
    (until the client closes the channel or the socket), its stdout and stderr go back as
    frames as it writes them; its exit code once both streams end (killed at ``timeout``)."""
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    lock = threading.Lock()

    def pump_in() -> None:
        try:
            while True:
                opcode, payload = read_frame(inp)
                if opcode == 0x8:
                    break
                if payload[:1] == b"\x00" and len(payload) > 1:
                    proc.stdin.write(payload[1:])
                    proc.stdin.flush()
                elif payload[:1] == b"\xff":
                    break
        except (OSError, ValueError):
            pass
        with contextlib.suppress(OSError):
            proc.stdin.close()

    def pump_out(stream: IO[bytes], channel: bytes) -> None:
        while chunk := os.read(stream.fileno(), 65536):
            with lock:
                send_frame(out, channel + chunk)

    threading.Thread(target=pump_in, daemon=True).start()
    err = threading.Thread(target=pump_out, args=(proc.stderr, b"\x02"), daemon=True)
    err.start()
    pump_out(proc.stdout, b"\x01")
    err.join(timeout)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
    finally:
        proc.stdout.close()
        proc.stderr.close()
