"""A persistent, size-bounded cache of compile results (compiled models, object code, PTX,
OpenCL program binaries), shared by every visc process of a user.

    cache = default_cache()                 # None when turned off (VISC_CACHE=0)
    key = CompileCache.key(ir_text, "sm_90", llvm_version)
    data = cache.get("ptx", key) if cache else None
    if data is None:
        data = compile(...)
        if cache:
            cache.put("ptx", key, data)

An entry is the file ``<root>/<kind>/<key[:2]>/<key>``: a header (magic, payload length,
payload sha256) then the payload, written to a temporary file and renamed into place, so a
reader sees a whole entry or none. A file that does not check out (a process killed
mid-write on a file system that reorders, a full disk, garbage) is removed and reported as
a miss: the caller compiles again, it never uses a bad entry. ``get`` touches the entry's
mtime; when the entries outgrow the bound, the least recently used go first. Eviction runs
under an ``flock`` on ``<root>/.lock`` so concurrent processes don't race each other;
readers take no lock (a file unlinked while being read stays readable on POSIX).

The cache is an optimization only: a root that cannot be created or written turns the
cache off for the process with one warning naming the path, and nothing fails.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import re
import struct
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from typing import BinaryIO

from visc.version import __version__

try:
    import fcntl
except ImportError:  # Windows: in-process locking only
    fcntl = None  # type: ignore[assignment]

DEFAULT_MAX_BYTES = 2 << 30  # 2 GiB: a few hundred compiled CNNs and their kernels
FORMAT = 1  # bump to orphan every entry written by an older layout or key scheme
MAGIC = b"VISCCCH\x01"
_HEADER = struct.Struct("<8sQ32s")  # magic, payload length, sha256 of the payload
_KIND = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_KEY = re.compile(r"[0-9a-f]{16,128}")
_TMP_PREFIX = ".tmp-"
_STALE_TMP_SECONDS = 3600.0  # a temporary file this old belongs to a writer that died
_LOW_WATER = 0.9  # eviction frees down to this fraction of the bound, so puts at the limit don't each scan
_OFF = ("0", "false", "no", "off")


class CompileCache:
    """Entries by (kind, key) under ``root``, at most ``max_bytes`` in all (approximately:
    the total is tracked in ``<root>/.size`` and checked after each put). Thread-safe and
    safe across processes."""

    def __init__(self, root: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.max_bytes = int(max_bytes)
        self.enabled = True
        self._lock = threading.Lock()  # the enabled flag and the size file, within the process

    # -- keys -----------------------------------------------------------------------------

    @staticmethod
    def key(*parts: str | bytes) -> str:
        """The sha256 (hex) of ``parts``, each length-prefixed (so ("ab", "c") and ("a", "bc")
        differ), with the visc version, the cache format and `code_fingerprint`: another visc,
        or an edited checkout of this one, never reads this one's results."""
        h = hashlib.sha256()
        for part in (f"visc-{__version__}", f"format-{FORMAT}", code_fingerprint(), *parts):
            data = part.encode() if isinstance(part, str) else bytes(part)
            h.update(b"s" if isinstance(part, str) else b"b")
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
        return h.hexdigest()

    # -- entries --------------------------------------------------------------------------

    def path(self, kind: str, key: str) -> str:
        """Where the entry (kind, key) lives (whether or not it exists)."""
        if not _KIND.fullmatch(kind):
            raise ValueError(f"cache kind {kind!r} must be lower-case letters, digits, '-', '_' or '.'")
        if not _KEY.fullmatch(key):
            raise ValueError(f"cache key {key!r} must be 16 to 128 lower-case hex digits (see CompileCache.key)")
        return os.path.join(self.root, kind, key[:2], key)

    def get(self, kind: str, key: str) -> bytes | None:
        """The payload stored under (kind, key), or None on a miss. A corrupt or truncated
        entry is removed and is a miss."""
        path = self.path(kind, key)
        if not self.enabled:
            return None
        try:
            with open(path, "rb") as f:
                payload = _read_entry(f)
        except OSError:
            return None
        if payload is None:
            with contextlib.suppress(OSError):
                os.unlink(path)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # most recently used: evicted last
        return payload

    def put(self, kind: str, key: str, data: bytes) -> None:
        """Store ``data`` under (kind, key), atomically (temporary file + rename); then keep
        the cache within its bound. Never raises for the file system: a root that cannot be
        written turns the cache off with a warning."""
        path = self.path(kind, key)
        if not self.enabled:
            return
        blob = _pack(data)
        if len(blob) > self.max_bytes:
            return  # would evict everything and then itself
        try:
            self._write(path, blob)
        except OSError as e:
            self._disable(e)
            return
        try:
            self._account(len(blob))
        except OSError as e:
            self._disable(e)

    def discard(self, kind: str, key: str) -> None:
        """Remove the entry (kind, key), if any: one that checked out but proved unusable (a
        program binary the driver no longer loads)."""
        with contextlib.suppress(OSError):
            os.unlink(self.path(kind, key))

    def _write(self, path: str, blob: bytes) -> None:
        folder = os.path.dirname(path)
        for attempt in range(2):  # a concurrent clear may remove the folder between mkdir and mkstemp
            os.makedirs(folder, exist_ok=True)
            try:
                fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=folder)
                break
            except FileNotFoundError:
                if attempt:
                    raise
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _disable(self, error: OSError) -> None:
        with self._lock:
            if not self.enabled:
                return
            self.enabled = False
        what = error.strerror or str(error)
        where = error.filename or self.root
        warnings.warn(f"visc's compile cache at '{self.root}' cannot be written ({what}: '{where}'); "
                      "compiling without it in this process (set VISC_CACHE_DIR to a writable folder, "
                      "or VISC_CACHE=0 to turn it off)", RuntimeWarning, stacklevel=3)

    # -- size bound -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """This process's threads and other processes out of the size file and eviction."""
        with self._lock:
            os.makedirs(self.root, exist_ok=True)
            fd = os.open(os.path.join(self.root, ".lock"), os.O_RDWR | os.O_CREAT, 0o666)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def _account(self, added: int) -> None:
        """Add ``added`` bytes to the tracked total; over the bound, evict LRU entries. The
        total overcounts a key written twice, which only makes the next scan come sooner."""
        with self._locked():
            total = self._read_total()
            if total is None:
                total = sum(size for _, _, size, _ in self._scan())
            else:
                total += added
            if total > self.max_bytes:
                total = self._evict(int(self.max_bytes * _LOW_WATER))
            self._write_total(total)

    def _read_total(self) -> int | None:
        try:
            with open(os.path.join(self.root, ".size")) as f:
                return max(0, int(f.read().strip()))
        except (OSError, ValueError):
            return None

    def _write_total(self, total: int) -> None:
        path = os.path.join(self.root, ".size")
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}"
        with open(tmp, "w") as f:
            f.write(str(total))
        os.replace(tmp, path)

    def _evict(self, target: int) -> int:
        """Remove least recently used entries until at most ``target`` bytes remain; the
        bytes left."""
        entries = sorted(self._scan(), key=lambda e: e[3])
        total = sum(size for _, _, size, _ in entries)
        for _, path, size, _ in entries:
            if total <= target:
                break
            try:
                os.unlink(path)
                total -= size
            except FileNotFoundError:
                total -= size
            except OSError:
                pass
        return total

    def _kinds(self) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self.root) if e.is_dir() and _KIND.fullmatch(e.name))
        except OSError:
            return []

    def _scan(self, kinds: list[str] | None = None) -> Iterator[tuple[str, str, int, int]]:
        """(kind, path, bytes, mtime_ns) of every entry; removes temporary files a killed writer
        left behind."""
        now = time.time()
        for kind in kinds if kinds is not None else self._kinds():
            try:
                shards = [e.path for e in os.scandir(os.path.join(self.root, kind)) if e.is_dir()]
            except OSError:
                continue
            for shard in shards:
                try:
                    files = list(os.scandir(shard))
                except OSError:
                    continue
                for entry in files:
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    if entry.name.startswith(_TMP_PREFIX):
                        if now - st.st_mtime > _STALE_TMP_SECONDS:
                            with contextlib.suppress(OSError):
                                os.unlink(entry.path)
                        continue
                    if _KEY.fullmatch(entry.name) and entry.is_file():
                        yield kind, entry.path, st.st_size, st.st_mtime_ns

    # -- inspection -----------------------------------------------------------------------

    def info(self) -> dict[str, object]:
        """``root``, ``max_bytes``, ``enabled``, ``entries`` and ``bytes`` in all, and per kind
        (``kinds``: kind -> {"entries", "bytes"})."""
        kinds: dict[str, dict[str, int]] = {}
        for kind, _, size, _ in self._scan():
            slot = kinds.setdefault(kind, {"entries": 0, "bytes": 0})
            slot["entries"] += 1
            slot["bytes"] += size
        return {"root": self.root, "max_bytes": self.max_bytes, "enabled": self.enabled,
                "entries": sum(k["entries"] for k in kinds.values()),
                "bytes": sum(k["bytes"] for k in kinds.values()), "kinds": kinds}

    def clear(self, kind: str | None = None) -> int:
        """Remove every entry (of ``kind``, if given); the number removed."""
        if kind is not None:
            self.path(kind, "0" * 64)  # checks the kind's spelling
        if not os.path.isdir(self.root):
            return 0
        removed = 0
        with self._locked():
            for _, path, _, _ in list(self._scan(None if kind is None else [kind])):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                    removed += 1
            for name in self._kinds() if kind is None else [kind]:
                folder = os.path.join(self.root, name)
                with contextlib.suppress(OSError):
                    for shard in os.scandir(folder):
                        with contextlib.suppress(OSError):
                            os.rmdir(shard.path)  # empty ones only
                    os.rmdir(folder)
            self._write_total(sum(size for _, _, size, _ in self._scan()))
        return removed

    def __repr__(self) -> str:
        return f"CompileCache({self.root!r}, max_bytes={self.max_bytes})"


_fingerprint: str | None = None


def code_fingerprint() -> str:
    """A digest of visc's own files (its .py sources and shipped records): results depend on
    the code that made them, and a development checkout keeps one version number through
    every edit. Read once per process (a few milliseconds)."""
    global _fingerprint
    if _fingerprint is None:
        package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        h = hashlib.sha256()
        for folder, dirs, files in os.walk(package):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            for name in sorted(files):
                if name.endswith((".py", ".json")):
                    path = os.path.join(folder, name)
                    h.update(os.path.relpath(path, package).encode() + b"\0")
                    with contextlib.suppress(OSError), open(path, "rb") as f:
                        h.update(hashlib.sha256(f.read()).digest())
        _fingerprint = h.hexdigest()
    return _fingerprint


def _pack(data: bytes) -> bytes:
    return _HEADER.pack(MAGIC, len(data), hashlib.sha256(data).digest()) + bytes(data)


def _read_entry(f: BinaryIO) -> bytes | None:
    """The payload of an entry file (read straight into its own bytes, no copy of a large
    model), or None when it is not a whole, intact entry."""
    head = f.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    magic, length, digest = _HEADER.unpack(head)
    if magic != MAGIC or os.fstat(f.fileno()).st_size != _HEADER.size + length:  # truncated, or garbage
        return None
    payload = f.read(length)
    if len(payload) != length or hashlib.sha256(payload).digest() != digest:
        return None
    return payload


# -- the process's default cache ------------------------------------------------------------

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_caches: dict[tuple[str, int], CompileCache] = {}
_caches_lock = threading.Lock()


def parse_size(text: str) -> int:
    """Bytes from ``"2G"``, ``"512M"``, ``"1.5GiB"``, ``"100kB"`` or ``"1000000"`` (binary units).
    ValueError when it is none of these."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if m is None:
        raise ValueError(f"not a size: {text!r} (e.g. 2G, 512M, 1000000)")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def user_cache_dir() -> str:
    """The per-user cache folder for visc, as platformdirs would name it: $XDG_CACHE_HOME/visc
    or ~/.cache/visc on Linux, ~/Library/Caches/visc on macOS, %LOCALAPPDATA%\\visc\\Cache on
    Windows."""
    if sys.platform == "darwin":
        return os.path.join(os.path.expanduser("~"), "Library", "Caches", "visc")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
        return os.path.join(base, "visc", "Cache")
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = xdg if xdg and os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "visc")


def cache_root() -> str | None:
    """The compile cache's folder: ``compile`` under $VISC_CACHE_DIR, else under the user
    cache folder (beside other things visc keeps there, e.g. the PoCL copy); None when
    VISC_CACHE=0 or VISC_CACHE_DIR is set empty."""
    if os.environ.get("VISC_CACHE", "1").strip().lower() in _OFF:
        return None
    base = os.environ.get("VISC_CACHE_DIR")
    if base is not None and not base.strip():
        return None
    return os.path.join(os.path.abspath(base or user_cache_dir()), "compile")


def cache_max_bytes() -> int:
    """The bound from VISC_CACHE_MAX_BYTES (a size such as "2G"), else `DEFAULT_MAX_BYTES`;
    a value that is not a size warns and keeps the default."""
    text = os.environ.get("VISC_CACHE_MAX_BYTES", "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    try:
        return parse_size(text)
    except ValueError:
        warnings.warn(f"VISC_CACHE_MAX_BYTES={text!r} is not a size (e.g. 2G, 512M, 1000000); "
                      f"the compile cache keeps its default bound of {DEFAULT_MAX_BYTES >> 20} MiB",
                      RuntimeWarning, stacklevel=3)
        return DEFAULT_MAX_BYTES


_bypass: contextvars.ContextVar[bool] = contextvars.ContextVar("visc_cache_bypass", default=False)


@contextlib.contextmanager
def bypassed() -> Iterator[None]:
    """Within this block (this thread or task), `default_cache` is None: a compile asked not
    to use the cache (`visc compile --no-cache`) neither reads nor fills any kind of it."""
    token = _bypass.set(True)
    try:
        yield
    finally:
        _bypass.reset(token)


def default_cache() -> CompileCache | None:
    """The cache the environment asks for (see `cache_root`, `cache_max_bytes`), one object
    per root and bound in the process, so a root found unwritable stays off; None when off
    (or `bypassed`)."""
    if _bypass.get():
        return None
    root = cache_root()
    if root is None:
        return None
    key = (root, cache_max_bytes())
    with _caches_lock:
        cache = _caches.get(key)
        if cache is None:
            cache = _caches[key] = CompileCache(*key)
    return cache if cache.enabled else None


__all__ = ["CompileCache", "DEFAULT_MAX_BYTES", "bypassed", "default_cache", "code_fingerprint", "cache_root", "cache_max_bytes", "parse_size",
           "user_cache_dir"]
