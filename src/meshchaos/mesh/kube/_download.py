"""Fetch the pinned ``istioctl`` release into a cache, verified against its published sha256.

The archive ``istioctl-<V>-<platform>.tar.gz`` and its sibling ``.sha256`` come from the
Istio release page. Istio's release builder writes the checksum file as the hex digest,
one space, and the file name; only the first field is compared. The archive is written
to a temporary file beside the cache entry, checked, and only then unpacked: on a
mismatch, a short read or a deadline, nothing is left behind, and the cache holds either
a complete ``istioctl`` or nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import os
import platform
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from meshchaos.errors import MeshError

__all__ = [
    "CACHE_ENV",
    "RELEASES_URL",
    "ChecksumMismatch",
    "DownloadFailed",
    "cache_dir",
    "download_istioctl",
    "release_platform",
]

RELEASES_URL = "https://github.com/istio/istio/releases/download"
CACHE_ENV = "MESHCHAOS_ISTIO_CACHE"
_CHUNK = 1 << 16
# An istioctl archive is ~30 MB; a checksum file is one line. Bounds against a wrong URL.
_MAX_ARCHIVE = 200 << 20
_MAX_SHA = 4096


class DownloadFailed(MeshError):
    """The release could not be fetched (HTTP error, short read, deadline)."""


class ChecksumMismatch(DownloadFailed):
    """The archive's sha256 differs from the published one; nothing was kept."""


def cache_dir(version: str, env: Mapping[str, str] | None = None) -> Path:
    """``$MESHCHAOS_ISTIO_CACHE/<version>`` or ``~/.cache/meshchaos/istio/<version>``."""
    env = os.environ if env is None else env
    base = env.get(CACHE_ENV) or str(Path.home() / ".cache" / "meshchaos" / "istio")
    return Path(base) / version


def release_platform(system: str | None = None, machine: str | None = None) -> str:
    """Istio's name for this OS and CPU: ``linux-amd64``, ``linux-arm64``, ``osx-arm64``..."""
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    os_name = {"linux": "linux", "darwin": "osx"}.get(system)
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if os_name is None or arch is None:
        raise DownloadFailed(
            f"no Istio release for {system}/{machine}: put istioctl on PATH yourself"
        )
    return f"{os_name}-{arch}"


def download_istioctl(
    version: str,
    dest_dir: Path,
    *,
    base_url: str = RELEASES_URL,
    platform_name: str | None = None,
    timeout_s: float = 300.0,
    clock: Callable[[], float] = time.monotonic,
) -> Path:
    """Download, verify and unpack ``istioctl`` of ``version`` into ``dest_dir``; its path."""
    plat = platform_name or release_platform()
    archive = f"istioctl-{version}-{plat}.tar.gz"
    url = f"{base_url.rstrip('/')}/{version}/{archive}"
    end = clock() + timeout_s
    published = _published_sha(_fetch(url + ".sha256", _MAX_SHA, end, clock), url + ".sha256")
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".istioctl-", suffix=".part", dir=dest_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _stream(url, out, end, clock)
        if digest != published:
            raise ChecksumMismatch(
                f"{url}: sha256 {digest} does not match the published {published} "
                f"({url}.sha256); refusing to use it, and nothing was kept"
            )
        binary = _extract_istioctl(tmp, url)
        fd2, bin_tmp = tempfile.mkstemp(prefix=".istioctl-", suffix=".bin", dir=dest_dir)
        try:
            with os.fdopen(fd2, "wb") as out:
                out.write(binary)
            os.chmod(bin_tmp, 0o700)  # the user's own cache: only they run it
            final = dest_dir / "istioctl"
            os.replace(bin_tmp, final)  # atomic: the cache never holds half a binary
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(bin_tmp)
            raise
        return final
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _left(end: float, clock: Callable[[], float], url: str) -> float:
    left = end - clock()
    if left <= 0:
        raise DownloadFailed(f"{url}: the download ran past its deadline")
    return left


def _open(url: str, end: float, clock: Callable[[], float]) -> io.BufferedIOBase:
    try:
        # The URL is the pinned release (or a test's 127.0.0.1 server), never user input.
        resp = urllib.request.urlopen(url, timeout=min(60.0, _left(end, clock, url)))  # noqa: S310
    except urllib.error.HTTPError as exc:
        raise DownloadFailed(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadFailed(f"{url}: {exc}") from None
    return resp  # type: ignore[no-any-return]


def _fetch(url: str, limit: int, end: float, clock: Callable[[], float]) -> bytes:
    with _open(url, end, clock) as resp:
        try:
            data = resp.read(limit + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadFailed(f"{url}: {exc}") from None
    if len(data) > limit:
        raise DownloadFailed(f"{url}: larger than {limit} bytes; not a checksum file")
    return data


def _stream(url: str, out: io.BufferedWriter, end: float, clock: Callable[[], float]) -> str:
    sha = hashlib.sha256()
    total = 0
    with _open(url, end, clock) as resp:
        expected = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
        while True:
            _left(end, clock, url)
            try:
                chunk = resp.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadFailed(f"{url}: {exc}") from None
            if not chunk:
                break
            total += len(chunk)
            if total > _MAX_ARCHIVE:
                raise DownloadFailed(f"{url}: larger than {_MAX_ARCHIVE} bytes")
            sha.update(chunk)
            out.write(chunk)
    if expected is not None and expected.isdigit() and int(expected) != total:
        raise DownloadFailed(f"{url}: got {total} of {expected} bytes")
    return sha.hexdigest()


def _published_sha(data: bytes, url: str) -> str:
    fields = data.decode("ascii", "replace").split()
    digest = fields[0].lower() if fields else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise DownloadFailed(f"{url}: not a sha256 checksum file ({data[:80]!r})")
    return digest


def _extract_istioctl(archive: Path, url: str) -> bytes:
    """The ``istioctl`` regular file of the archive (read in memory: no path from the
    archive is ever used to write)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.isfile() and Path(member.name).name == "istioctl":
                    f = tar.extractfile(member)
                    if f is not None:
                        return f.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DownloadFailed(f"{url}: not a readable tar.gz ({exc})") from None
    raise DownloadFailed(f"{url}: the archive has no istioctl file")
