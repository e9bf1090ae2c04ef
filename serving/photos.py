"""Any photo a user has -> an upright RGB image, or a clear reason why not.

Files and http(s) URLs, decoded by input_pipeline.photo (the build's decoder too).
Refused with PhotoError: a missing or unreadable file, what decode refuses (not an
image, truncated, a decompression bomb), a URL that is not http(s), an HTTP error, and a
download over the size or time limit.
"""

import os
import urllib.error
import urllib.parse
import urllib.request

from input_pipeline.photo import PhotoError, decode

__all__ = ["PhotoError", "decode", "expand", "fetch", "is_url", "load", "read"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
MAX_DOWNLOAD_BYTES = 20 << 20
DOWNLOAD_TIMEOUT_SECONDS = 15.0


def is_url(source):
    return "://" in source


def expand(sources):
    """Files and URLs as given; folders replaced by their image files (sorted, recursive)."""
    for source in sources:
        if not is_url(source) and os.path.isdir(source):
            for root, dirs, files in os.walk(source):
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(IMAGE_EXTENSIONS):
                        yield os.path.join(root, name)
        else:
            yield source


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) only (urllib would also follow one to ftp:)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urllib.parse.urlparse(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise PhotoError(f"redirected to a {scheme}: URL, which is not fetched")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def fetch(url, max_bytes=MAX_DOWNLOAD_BYTES, timeout=DOWNLOAD_TIMEOUT_SECONDS):
    """The bytes at an http(s) URL, refusing other schemes, HTTP errors and oversize bodies."""
    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise PhotoError(f"only http and https URLs are fetched, not {scheme}:")
    request = urllib.request.Request(url, headers={"User-Agent": "adience-age-gender/0.1"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and int(length) > max_bytes:
                raise PhotoError(f"download of {int(length):,} bytes is over the {max_bytes:,}-byte limit")
            data = response.read(max_bytes + 1)
    except urllib.error.HTTPError as e:
        raise PhotoError(f"HTTP error {e.code} {e.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise PhotoError(f"download failed: {reason}") from None
    if len(data) > max_bytes:
        raise PhotoError(f"download is over the {max_bytes:,}-byte limit")
    return data


def read(source, max_bytes=MAX_DOWNLOAD_BYTES, timeout=DOWNLOAD_TIMEOUT_SECONDS):
    """The bytes of a file or URL."""
    if is_url(source):
        return fetch(source, max_bytes, timeout)
    try:
        with open(source, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise PhotoError("no such file") from None
    except OSError as e:
        raise PhotoError(f"cannot read the file: {e.strerror or e}") from None


def load(source, max_bytes=MAX_DOWNLOAD_BYTES, timeout=DOWNLOAD_TIMEOUT_SECONDS, max_pixels=None):
    """A file path or http(s) URL -> an upright RGB PIL image; PhotoError if it cannot be."""
    return decode(read(source, max_bytes, timeout), max_pixels)
