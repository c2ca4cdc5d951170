"""``promptkit tags download``: fetch the public tagcomplete CSV into the user cache.

The list comes from its HTTPS address or from a local mirror (``--url file:///…``).

The download is read into memory, validated (size against ``Content-Length``,
every row's columns and numbers, a minimum row count), and only then replaces
the previous list with :func:`promptkit._cache.atomic_write` (a temporary file
next to it, fsync, ``os.replace``) — any failure leaves the old file untouched.
Which lists exist and where they are fetched from is the source registry's
(:data:`promptkit.tags.SOURCES`).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from promptkit._cache import atomic_write

from .locations import downloaded_path
from .reader import decode, read_rows
from .records import TagDataError
from .sources import SOURCES, downloadable_sources

__all__ = ["DEFAULT_URLS", "DownloadError", "DownloadResult", "download_tags", "validate_csv", "download_info"]

#: The lists bundled with the tagcomplete extension (DominikDoom/a1111-sd-webui-tagcomplete, ``tags/``;
#: spec/tags-and-lint.md §5.1), from the source registry.
DEFAULT_URLS = {name: SOURCES[name].url for name in downloadable_sources()}
MIN_ROWS = 1000           # the real lists hold >100,000 rows; fewer means an error page or a stub
MAX_BAD_FRACTION = 0.001  # tolerated malformed rows (e621.csv has one nameless row), dropped on save


class DownloadError(RuntimeError):
    """A download that failed or did not validate; the previous list was kept."""


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    url: str
    rows: int
    dropped_rows: int
    bytes: int
    sha256: str
    seconds: float


def validate_csv(data: bytes, origin: str, source: str, min_rows: int = MIN_ROWS) -> tuple[bytes, int, int, list]:
    """Check a downloaded tag list.  Returns ``(clean_bytes, rows, dropped, problems)``;
    raises :class:`DownloadError` when the list is unusable."""
    fmt = SOURCES[source] if source in SOURCES else SOURCES["danbooru"].renamed(source)
    try:
        text = decode(data, origin)
    except TagDataError as exc:
        raise DownloadError(str(exc)) from None
    if text.lstrip().startswith("<"):
        raise DownloadError(f"{origin}: got an HTML/XML page, not a tag CSV")
    lines = text.splitlines()
    table = read_rows(text, origin, fmt, strict=False)
    rows = len(table.names)
    bad = table.skipped
    # a row cut in half at the very end is the signature of a truncated transfer
    if lines and not text.endswith("\n") and read_rows(lines[-1], origin, fmt, strict=False).skipped:
        raise DownloadError(f"{origin}:{len(lines)}: last row is incomplete (truncated download?)")
    if bad > max(1, int(rows * MAX_BAD_FRACTION)):
        line, msg = table.first_error
        raise DownloadError(f"{origin}: {bad} malformed rows, first at line {line}: {msg}")
    if rows < min_rows:
        raise DownloadError(f"{origin}: only {rows} valid rows (expected at least {min_rows})")
    problems = []
    if bad:
        # drop the malformed lines so the saved list loads with strict=True
        keep = []
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            one = read_rows(line + "\n", origin, fmt, strict=False)
            if one.skipped:
                problems.append((lineno, one.first_error[1]))
                continue
            keep.append(line)
        data = ("\n".join(keep) + "\n").encode("utf-8")
    return data, rows, bad, problems


def _progress_printer(stream) -> Callable[[int, int | None], None]:
    last = [0.0]

    def show(done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] < 0.1 and (total is None or done < total):
            return
        last[0] = now
        if total:
            frac = done / total
            bar = "#" * int(frac * 30)
            stream.write(f"\r[{bar:<30}] {frac * 100:5.1f}% {done / 1e6:6.2f}/{total / 1e6:.2f} MB")
        else:
            stream.write(f"\r{done / 1e6:6.2f} MB")
        stream.flush()

    return show


def download_tags(
    source: str = "danbooru",
    url: str | None = None,
    dest: Path | None = None,
    *,
    progress: bool | None = None,
    timeout: float = 60.0,
    min_rows: int = MIN_ROWS,
) -> DownloadResult:
    """Download, validate and atomically install a tag list; see module docs."""
    if source not in DEFAULT_URLS:
        raise DownloadError(f"unknown source {source!r}; expected one of {', '.join(DEFAULT_URLS)}")
    url = url or DEFAULT_URLS[source]
    local = url.startswith("file://")
    if not (local or url.startswith(("https://", "http://"))):
        hint = f"; for a local file write file://{Path(url).expanduser().resolve()}" if "://" not in url else ""
        raise DownloadError(f"unsupported URL {url!r} (expected https://… or file://…{hint})")
    dest = Path(dest) if dest is not None else downloaded_path(source)
    if progress is None:
        progress = sys.stderr.isatty()
    show = _progress_printer(sys.stderr) if progress else None
    t0 = time.perf_counter()
    req = urllib.request.Request(url, headers={"User-Agent": "promptkit-tags-download"})
    chunks = []
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status = getattr(resp, "status", None) or 200  # (a file:// response has no status)
            if status != 200:
                raise DownloadError(f"{url}: HTTP {status}")
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            while True:
                block = resp.read(1 << 16)
                if not block:
                    break
                chunks.append(block)
                done += len(block)
                if show:
                    show(done, total)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"{url}: {exc.reason}") from None
    except (OSError, ValueError) as exc:  # IncompleteRead, reset connections, timeouts
        raise DownloadError(f"{url}: transfer failed ({exc.__class__.__name__}: {exc})") from None
    finally:
        if show:
            sys.stderr.write("\n")
    data = b"".join(chunks)
    if total is not None and len(data) != total:
        raise DownloadError(f"{url}: got {len(data)} of {total} bytes (truncated download)")
    clean, rows, dropped, problems = validate_csv(data, url, source, min_rows)
    for lineno, msg in problems:
        print(f"warning: {url}:{lineno}: {msg} (row dropped)", file=sys.stderr)
    digest = hashlib.sha256(clean).hexdigest()
    atomic_write(dest, clean)
    meta = {
        "source": source, "url": url, "rows": rows, "dropped_rows": dropped, "bytes": len(clean),
        "sha256": digest, "downloaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        atomic_write(dest.with_suffix(".json"), json.dumps(meta, indent=2).encode())
    except OSError:
        pass
    return DownloadResult(dest, url, rows, dropped, len(clean), digest, time.perf_counter() - t0)


def download_info(source: str) -> dict | None:
    """Metadata of a downloaded list (``None`` when there is none)."""
    meta = downloaded_path(source).with_suffix(".json")
    try:
        return json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
