"""Downloading istioctl: verified against the published sha256, from a local fake server.

The server listens on 127.0.0.1 only; no test here reaches the network.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from meshchaos.mesh.kube._download import (
    ChecksumMismatch,
    DownloadFailed,
    cache_dir,
    download_istioctl,
    release_platform,
)

VERSION = "1.30.5"
ARCHIVE = f"/{VERSION}/istioctl-{VERSION}-linux-amd64.tar.gz"
BINARY = b"#!/bin/sh\necho 1.30.5\n"


def tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Files:
    """What the fake release server serves: path -> (body, Content-Length to claim)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, int | None]] = {}
        self.requested: list[str] = []

    def put(self, path: str, body: bytes, length: int | None = None) -> None:
        self.routes[path] = (body, length)

    def release(self, archive: bytes, published_sha: str | None = None) -> None:
        sha = published_sha or hashlib.sha256(archive).hexdigest()
        self.put(ARCHIVE, archive)
        # Istio's format: hex digest, one space, the file name.
        self.put(ARCHIVE + ".sha256", f"{sha} istioctl-{VERSION}-linux-amd64.tar.gz\n".encode())


@pytest.fixture
def server() -> Iterator[tuple[str, Files]]:
    files = Files()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            files.requested.append(self.path)
            if self.path not in files.routes:
                self.send_error(404)
                return
            body, length = files.routes[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(length if length is not None else len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def fetch(url: str, dest: Path) -> Path:
    return download_istioctl(VERSION, dest, base_url=url, platform_name="linux-amd64", timeout_s=20)


def test_a_verified_release_lands_as_an_executable_istioctl(
    server: tuple[str, Files], tmp_path: Path
) -> None:
    url, files = server
    files.release(tarball({f"istioctl-{VERSION}/istioctl": BINARY}))
    path = fetch(url, tmp_path / "cache")
    assert path == tmp_path / "cache" / "istioctl"
    assert path.read_bytes() == BINARY
    assert path.stat().st_mode & 0o111
    assert sorted(p.name for p in path.parent.iterdir()) == ["istioctl"]
    assert files.requested == [ARCHIVE + ".sha256", ARCHIVE]


def test_a_checksum_mismatch_is_refused_and_leaves_no_file(
    server: tuple[str, Files], tmp_path: Path
) -> None:
    url, files = server
    files.release(tarball({"istioctl": BINARY}), published_sha="0" * 64)
    with pytest.raises(ChecksumMismatch) as info:
        fetch(url, tmp_path / "cache")
    msg = str(info.value)
    assert "does not match the published " + "0" * 64 in msg
    assert "nothing was kept" in msg
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_short_read_is_a_failure_and_leaves_no_file(
    server: tuple[str, Files], tmp_path: Path
) -> None:
    url, files = server
    archive = tarball({"istioctl": BINARY})
    files.release(archive)
    files.put(ARCHIVE, archive, length=len(archive) + 100)
    with pytest.raises(DownloadFailed):
        fetch(url, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_missing_release_names_the_url_and_status(
    server: tuple[str, Files], tmp_path: Path
) -> None:
    url, _ = server
    with pytest.raises(
        DownloadFailed, match=r"istioctl-1\.30\.5-linux-amd64\.tar\.gz\.sha256: HTTP 404"
    ):
        fetch(url, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_a_checksum_file_that_is_not_one_is_refused(
    server: tuple[str, Files], tmp_path: Path
) -> None:
    url, files = server
    files.release(tarball({"istioctl": BINARY}))
    files.put(ARCHIVE + ".sha256", b"<html>not found</html>")
    with pytest.raises(DownloadFailed, match="not a sha256 checksum file"):
        fetch(url, tmp_path / "cache")


def test_an_archive_without_istioctl_is_refused(server: tuple[str, Files], tmp_path: Path) -> None:
    url, files = server
    files.release(tarball({"README": b"hi"}))
    with pytest.raises(DownloadFailed, match="has no istioctl file"):
        fetch(url, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_cache_dir_defaults_under_the_home_cache_and_follows_the_env(tmp_path: Path) -> None:
    assert cache_dir("1.30.5", env={}) == Path.home() / ".cache/meshchaos/istio/1.30.5"
    env = {"MESHCHAOS_ISTIO_CACHE": str(tmp_path)}
    assert cache_dir("1.30.5", env=env) == tmp_path / "1.30.5"


@pytest.mark.parametrize(
    ("system", "machine", "want"),
    [
        ("Linux", "x86_64", "linux-amd64"),
        ("Linux", "aarch64", "linux-arm64"),
        ("Darwin", "arm64", "osx-arm64"),
        ("Darwin", "x86_64", "osx-amd64"),
    ],
)
def test_release_platform_names(system: str, machine: str, want: str) -> None:
    assert release_platform(system, machine) == want


def test_an_unknown_platform_says_to_bring_istioctl() -> None:
    with pytest.raises(DownloadFailed, match="put istioctl on PATH"):
        release_platform("Windows", "x86_64")
