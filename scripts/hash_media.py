#!/usr/bin/env python3
"""Hash intimate images and videos on this device, for a hashbank case.

Only hashes leave this device: the files themselves are never sent anywhere.

* Images become a PDQ hash plus a quality score (0-100), computed exactly as
  ``pdqhash.compute(np.asarray(Image.open(path).convert("RGB")))`` with the bits
  packed most significant first (64 lowercase hex digits).
* Videos become the MD5 of the file bytes (32 lowercase hex digits), read in
  1 MiB chunks, so a video of any size can be hashed.

Accepted file types (by extension, upper or lower case):
  images: jpeg, jpg, png, gif, psd, tiff, tif, xcf, tga, miff, ico, dcm, xpm, pcx, bmp
  videos: mp4, mov, avi, qt, wmv

Notes on images:
* Pillow cannot read GIMP (.xcf), ImageMagick (.miff) or DICOM (.dcm) files; for
  these (and for damaged files) the tool explains how to convert them to PNG.
* Any colour mode (transparency, palette, greyscale, CMYK, 16 bit ...) is converted
  to 8-bit RGB first. Transparency is dropped, not blended.
* Animated GIFs (and multi-page TIFFs) are hashed from their FIRST frame only.
* The EXIF orientation tag is applied: a photo is hashed upright, as a person
  sees it and as platforms that re-encode uploads store it, and as the web page
  hashes it in the browser (cases/static/cases/hash-file.js). The reference
  implementations hash the stored pixels; for a photo without the tag (or
  with orientation 1) the two are the same.
* Pillow's decompression-bomb limit stays on: an image with an absurd number of
  pixels is refused with a clear message.
* PDQ hashes with a quality below 50 are left out (with a warning), because the
  bank refuses them: they are too unreliable to match.

Output (stdout) is exactly the ``hashes`` body of the case API::

    {"hashes": [{"algorithm": "pdq", "value": "<64 hex>", "quality": 93},
                {"algorithm": "md5", "value": "<32 hex>"}]}

File names are left out unless ``--with-paths`` is given (they can be sensitive).
``--submit URL`` creates the case directly (``POST <URL>/api/v1/cases``).

Exit codes: 0 ok, 1 some file failed (the JSON for the others is still printed)
or the server refused the case, 2 usage error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pdqhash
import requests
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from exchange.client.http import is_loopback

IMAGE_EXTENSIONS: tuple[str, ...] = (
    "jpeg",
    "jpg",
    "png",
    "gif",
    "psd",
    "tiff",
    "tif",
    "xcf",
    "tga",
    "miff",
    "ico",
    "dcm",
    "xpm",
    "pcx",
    "bmp",
)
VIDEO_EXTENSIONS: tuple[str, ...] = ("mp4", "mov", "avi", "qt", "wmv")

MIN_PDQ_QUALITY = 50  # the bank refuses PDQ hashes below this quality
MAX_HASHES_PER_CASE = 20  # the case API takes 1..20 hashes
CHUNK_SIZE = 1024 * 1024  # MD5 streaming chunk
CASES_PATH = "/api/v1/cases"
DEFAULT_TIMEOUT = 30.0

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_ACCEPTED_TEXT = f"images: {', '.join(IMAGE_EXTENSIONS)}; videos: {', '.join(VIDEO_EXTENSIONS)}"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class HashResult:
    """One hash of one file. ``quality`` is set for PDQ only."""

    algorithm: str
    value: str
    quality: int | None
    file: Path
    # Number of frames in the image (only the first one is hashed).
    frames: int = field(default=1, compare=False)

    def to_api(self, with_path: bool = False) -> dict[str, Any]:
        """The hash as the case API takes it (plus ``file`` if asked)."""
        out: dict[str, Any] = {"algorithm": self.algorithm, "value": self.value}
        if self.quality is not None:
            out["quality"] = self.quality
        if with_path:
            out["file"] = str(self.file)
        return out


class MediaError(Exception):
    """A file could not be hashed; ``message`` says why and what to do."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class UnsupportedFormatError(MediaError):
    """The file's extension is not one of the accepted formats."""


class SubmitError(Exception):
    """The case could not be created (network error, or the server refused it)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        field: str | None = None,
        raw: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.field = field
        self.raw = raw


class UsageError(Exception):
    """Bad command-line use (exit code 2)."""


# ------------------------------------------------------------------ file formats


def _extension(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def is_accepted(path: Path) -> bool:
    """True if the file's extension is an accepted image or video type."""
    ext = _extension(path)
    return ext in IMAGE_EXTENSIONS or ext in VIDEO_EXTENSIONS


def pillow_formats() -> list[str]:
    """Pillow decoders for the accepted image extensions that Pillow knows.

    Only these decoders are tried, so a file is never handed to an unrelated
    (and possibly riskier) decoder, such as EPS, which runs Ghostscript.
    """
    Image.init()
    registered = Image.registered_extensions()
    return sorted({registered[f".{e}"] for e in IMAGE_EXTENSIONS if f".{e}" in registered})


def pillow_readable_extensions() -> list[str]:
    """Accepted image extensions that have a Pillow decoder (opening can still fail)."""
    Image.init()
    registered = Image.registered_extensions()
    return [e for e in IMAGE_EXTENSIONS if f".{e}" in registered]


def _convert_command(path: Path, source: str | None = None) -> str:
    src = source or shlex.quote(str(path))
    dst = shlex.quote(str(path.with_name(f"{path.stem}-converted.png")))
    return f"magick {src} {dst}"


def _hint(kind: str, path: Path) -> str:
    cmd = _convert_command(path)
    then = "then hash the PNG (PNG keeps the pixels exactly, so the hash still matches)."
    hints = {
        "xcf": (
            "Pillow cannot read GIMP .xcf files. Open it in GIMP and use File > Export As... "
            f"to save it as PNG, or convert it with ImageMagick: `{cmd}`; {then}"
        ),
        "miff": (
            "Pillow cannot read ImageMagick .miff files. Convert it with ImageMagick: "
            f"`{cmd}`; {then}"
        ),
        "dcm": (
            "Pillow cannot read DICOM (.dcm) files. Convert it with ImageMagick: "
            f"`{cmd}` (or with DCMTK: `dcmj2pnm +on ...`); {then}"
        ),
        "psd": (
            "Pillow could not read this Photoshop file (it may be damaged, or saved "
            "without 'Maximize Compatibility'). In Photoshop use File > Export > "
            "Export As... > PNG, or convert it with ImageMagick: "
            f"`{_convert_command(path, shlex.quote(str(path) + '[0]'))}`; {then}"
        ),
        "webp": f"WebP is not an accepted format. Convert it to PNG: `{cmd}`; {then}",
        "heic": (
            "HEIC/HEIF (iPhone photos) is not an accepted format. Convert it to PNG or "
            f"JPEG (on a Mac: open it in Preview, File > Export), or `{cmd}`; {then}"
        ),
        "avif": f"AVIF is not an accepted format. Convert it to PNG: `{cmd}`; {then}",
        "video": (
            "Rename it to its real extension (for example .mp4 or .mov) so it is hashed as a video."
        ),
    }
    return hints.get(
        kind,
        "It may be damaged, incomplete (for example an unfinished download), or not "
        f"really a .{_extension(path) or '?'} image. If it opens in an image viewer, "
        f"save or export a copy as PNG (for example `{cmd}`), {then}",
    )


_KIND_NAMES = {
    "xcf": "GIMP .xcf",
    "miff": "ImageMagick .miff",
    "dcm": "DICOM",
    "psd": "Photoshop .psd",
    "webp": "WebP",
    "heic": "HEIC/HEIF",
    "avif": "AVIF",
    "video": "video",
}


def _sniff(path: Path) -> str | None:
    """Guess the real type of an unreadable file from its first bytes."""
    try:
        with path.open("rb") as f:
            head = f.read(132)
    except OSError:
        return None
    if head.startswith(b"gimp xcf"):
        return "xcf"
    if head.startswith(b"id=ImageMagick"):
        return "miff"
    if head[128:132] == b"DICM":
        return "dcm"
    if head.startswith(b"8BPS"):
        return "psd"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "heic"
        if brand in (b"avif", b"avis"):
            return "avif"
        return "video"
    return None


def _unreadable(path: Path, detail: str | None = None) -> MediaError:
    ext = _extension(path)
    actual = _sniff(path)
    kind = actual or ext
    intro = "Pillow could not read this image."
    if actual and actual != ext and not (actual == "video" and ext in VIDEO_EXTENSIONS):
        intro = f"This is really a {_KIND_NAMES[actual]} file, not a .{ext} image."
    elif ext in ("xcf", "miff", "dcm"):
        intro = ""  # the hint says it all
    if detail:
        intro = f"{intro} ({detail})".lstrip()
    return MediaError(path, f"{intro} {_hint(kind, path)}".lstrip())


# -------------------------------------------------------------------------- hashing


def md5_file(path: Path, chunk_size: int = CHUNK_SIZE) -> str:
    """MD5 of a file's bytes, read ``chunk_size`` bytes at a time."""
    digest = hashlib.md5(usedforsecurity=False)
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


def _to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB for PDQ.

    ``convert("RGB")`` handles every common mode, but it clips 16-bit greyscale
    (0..65535) to 255, which turns such an image white. Those are scaled down
    to 8 bits first, as other decoders do.
    """
    mode = im.mode
    if mode.startswith("I;16") or (mode == "I" and im.getextrema()[1] > 255):
        wide = np.asarray(im).astype(np.int64).clip(0, 65535)
        eight = ((wide * 255 + 32767) // 65535).astype(np.uint8)
        return Image.fromarray(eight, "L").convert("RGB")
    return im.convert("RGB")


def _hash_image(path: Path) -> HashResult:
    try:
        with warnings.catch_warnings():
            # Between MAX_IMAGE_PIXELS and twice that, Pillow only warns: big
            # camera photos land there. Above it, it raises (handled below).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=pillow_formats()) as im:
                # Frames of animations and multi-page files. (PSD "frames" are
                # layers and MPO ones camera extras: the main image is hashed.)
                frames = 1
                if im.format in ("GIF", "PNG", "TIFF"):
                    frames = int(getattr(im, "n_frames", 1) or 1)
                rgb = _to_rgb(ImageOps.exif_transpose(im))
    except Image.DecompressionBombError as exc:
        raise MediaError(
            path,
            "The image has far too many pixels, so it was not decoded: this is Pillow's "
            f"protection against 'decompression bomb' files ({exc}). If it is a genuine "
            "picture, make a smaller copy (for example `"
            f"magick {shlex.quote(str(path))} -resize 50% "
            f"{shlex.quote(str(path.with_name(path.stem + '-smaller.png')))}`) and hash that.",
        ) from None
    except PermissionError:
        raise MediaError(path, "Permission denied: this file cannot be read.") from None
    except UnidentifiedImageError:
        raise _unreadable(path) from None
    except MemoryError:
        raise MediaError(path, "Not enough memory to decode this image.") from None
    except Exception as exc:  # any decoder failure: a clear message, not a traceback
        raise _unreadable(path, f"{type(exc).__name__}: {exc}") from None

    vec, quality = pdqhash.compute(np.asarray(rgb))
    value = np.packbits(vec.astype(np.uint8)).tobytes().hex()
    return HashResult("pdq", value, int(quality), path, frames=frames)


def hash_file(path: Path) -> HashResult:
    """Hash one file: PDQ (+ quality) for images, MD5 for videos.

    Raises ``UnsupportedFormatError`` for other extensions and ``MediaError``
    (with a message for a person) when the file can't be read or decoded.
    """
    path = Path(path)
    ext = _extension(path)
    if ext not in IMAGE_EXTENSIONS and ext not in VIDEO_EXTENSIONS:
        what = f"'.{ext}' files are" if ext else "Files without an extension are"
        raise UnsupportedFormatError(path, f"{what} not accepted. Accepted: {_ACCEPTED_TEXT}.")
    if not path.exists():
        raise MediaError(path, "No such file.")
    if not path.is_file():
        raise MediaError(path, "Not a regular file.")
    try:
        if path.stat().st_size == 0:
            raise MediaError(path, "The file is empty (0 bytes).")
        if ext in VIDEO_EXTENSIONS:
            return HashResult("md5", md5_file(path), None, path)
    except PermissionError:
        raise MediaError(path, "Permission denied: this file cannot be read.") from None
    except OSError as exc:
        raise MediaError(path, f"Could not read the file: {exc.strerror or exc}.") from None
    return _hash_image(path)


def iter_media(
    paths: Iterable[Path | str],
    recursive: bool = False,
    skipped: list[Path] | None = None,
) -> Iterator[Path]:
    """Files to hash, in a stable order.

    A path given directly is yielded as it is (``hash_file`` reports a missing
    file or an unsupported type). For a folder, the accepted files directly in
    it are yielded (and those in all its subfolders with ``recursive``); hidden
    files, other types and (without ``recursive``) subfolders are left out and
    appended to ``skipped`` if given.
    """

    def skip(p: Path) -> None:
        if skipped is not None:
            skipped.append(p)

    def from_folder(folder: Path, names: Iterable[str]) -> Iterator[Path]:
        for name in sorted(names):
            p = folder / name
            if name.startswith(".") or not is_accepted(p):
                skip(p)
            else:
                yield p

    for raw in paths:
        p = Path(raw)
        if not p.is_dir():
            yield p
        elif recursive:
            for root, dirs, files in os.walk(p):
                for d in [d for d in dirs if d.startswith(".")]:
                    skip(Path(root) / d)
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                yield from from_folder(Path(root), files)
        else:
            children = sorted(p.iterdir())
            for c in children:
                if c.is_dir():
                    skip(c)
            yield from from_folder(p, [c.name for c in children if not c.is_dir()])


def dedupe(
    results: Iterable[HashResult],
) -> tuple[list[HashResult], list[tuple[HashResult, HashResult]]]:
    """Keep the first of identical (algorithm, value) hashes.

    Returns the kept results and (duplicate, kept) pairs.
    """
    kept: dict[tuple[str, str], HashResult] = {}
    dupes: list[tuple[HashResult, HashResult]] = []
    for r in results:
        key = (r.algorithm, r.value)
        if key in kept:
            dupes.append((r, kept[key]))
        else:
            kept[key] = r
    return list(kept.values()), dupes


# ---------------------------------------------------------------------- case API


def case_api_url(url: str) -> str:
    """``URL`` if it already ends in /api/v1/cases, else the base plus that path."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"--submit needs an http(s) URL such as https://bank.example.org, not {url!r}"
        )
    path = parts.path.rstrip("/")
    if not path.endswith(CASES_PATH):
        path += CASES_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def build_case_body(
    hashes: Sequence[HashResult | dict[str, Any]],
    *,
    in_image: bool,
    under_18_at_capture: bool,
    intimate: bool,
    pin: str | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    """The JSON body of ``POST /api/v1/cases``: eligibility answers and hashes only.

    File names are never included, whatever the hashes carry.
    """
    api_hashes = []
    for h in hashes:
        if isinstance(h, HashResult):
            api_hashes.append(h.to_api())
        else:
            api_hashes.append({k: h[k] for k in ("algorithm", "value", "quality") if k in h})
    body: dict[str, Any] = {
        "eligibility": {
            "in_image": bool(in_image),
            "under_18_at_capture": bool(under_18_at_capture),
            "has_media": True,  # the file is on this device: it was just hashed
            "intimate": bool(intimate),
        },
        "hashes": api_hashes,
    }
    if pin is not None:
        body["pin"] = pin
    if email is not None:
        body["email"] = email
    return body


def _accept_language() -> str | None:
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "").split(":")[0]
        tag = value.split(".")[0].split("@")[0].replace("_", "-")
        if tag and tag not in ("C", "POSIX"):
            primary = tag.split("-")[0]
            return tag if primary == tag else f"{tag}, {primary};q=0.9"
    return None


def submit_case(url: str, body: dict[str, Any], timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Create a case; return the server's JSON answer (``case_number``, ``pin``, ...).

    Raises ``SubmitError`` when the server can't be reached or refuses the case.
    Redirects are not followed (they would turn the POST into a GET).
    """
    endpoint = case_api_url(url)
    headers = {"Accept": "application/json"}
    lang = _accept_language()
    if lang:
        headers["Accept-Language"] = lang
    try:
        resp = requests.post(
            endpoint, json=body, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.Timeout:
        raise SubmitError(
            f"The server at {endpoint} did not answer within {timeout:g} s."
        ) from None
    except requests.ConnectionError:
        raise SubmitError(
            f"Could not connect to {endpoint}. Check the address and your connection."
        ) from None
    except requests.RequestException as exc:
        raise SubmitError(f"Request to {endpoint} failed: {exc}") from None

    try:
        payload = resp.json()
    except ValueError:
        payload = None
    status = resp.status_code
    if 200 <= status < 300:
        if isinstance(payload, dict) and payload.get("case_number"):
            return payload
        raise SubmitError(
            f"The server answered {status} but not with a case number.",
            status=status,
            raw=resp.text,
        )
    if resp.is_redirect or resp.is_permanent_redirect:
        location = resp.headers.get("Location", "?")
        raise SubmitError(
            f"The server redirected the request to {location}; run again with --submit {location}",
            status=status,
        )
    if isinstance(payload, dict) and payload.get("message"):
        raise SubmitError(
            str(payload["message"]),
            status=status,
            code=None if payload.get("code") is None else str(payload["code"]),
            field=None if payload.get("field") is None else str(payload["field"]),
            raw=resp.text,
        )
    detail = json.dumps(payload, ensure_ascii=False) if payload is not None else resp.text[:500]
    raise SubmitError(
        f"The server answered {status} {resp.reason or ''}".rstrip()
        + (f": {detail}" if detail else "."),
        status=status,
        raw=resp.text if payload is not None else None,
    )


# --------------------------------------------------------------------------- CLI

_QUESTIONS = {
    "in_image": (
        "Are you the person in the image or video?",
        "--in-image or --not-in-image",
    ),
    "under_18_at_capture": (
        "Were you under 18 when it was taken (even if you are an adult now)?",
        "--under-18-at-capture or --adult-at-capture",
    ),
    "intimate": (
        "Is it intimate (nude, partly nude, or sexual)?",
        "--intimate or --not-intimate",
    ),
}


def _isatty(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


def ask_yes_no(question: str, stdin: TextIO | None = None, out: TextIO | None = None) -> bool:
    """Ask a yes/no question on ``out`` (stderr) and read the answer from ``stdin``."""
    stdin = stdin or sys.stdin
    out = out or sys.stderr
    while True:
        out.write(f"{question} [yes/no] ")
        out.flush()
        line = stdin.readline()
        if not line:
            raise UsageError("no answer given (end of input)")
        answer = line.strip().lower()
        if answer in ("y", "yes"):
            return True
        if answer in ("n", "no"):
            return False
        out.write("Please answer yes or no.\n")


def _resolve_eligibility(args: argparse.Namespace) -> dict[str, bool]:
    answers: dict[str, bool] = {}
    interactive = _isatty(sys.stdin)
    for key, (question, flags) in _QUESTIONS.items():
        value = getattr(args, key)
        if value is None:
            if not interactive:
                raise UsageError(
                    f"--submit needs an answer to: {question} Pass {flags} "
                    "(or run it in a terminal to be asked)."
                )
            value = ask_yes_no(question)
        answers[key] = value
    return answers


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hashbank-hash",
        description=(
            "Hash images (PDQ) and videos (MD5) on this device and print the JSON the "
            "hashbank case API takes, or create the case with --submit. Only hashes "
            "are ever sent, never the files."
        ),
        epilog=(
            f"Accepted: {_ACCEPTED_TEXT}. Animated GIFs are hashed from their first "
            "frame. PDQ hashes with quality below 50 are left out (the bank refuses "
            "them). Exit codes: 0 ok, 1 a file failed or the case was refused, 2 usage error."
        ),
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    p.add_argument(
        "-r", "--recursive", action="store_true", help="also hash files in subfolders of folders"
    )
    p.add_argument(
        "--with-paths",
        action="store_true",
        help="add each hash's file name to the JSON, for your own reference "
        "(not for the API; file names are never sent)",
    )
    p.add_argument(
        "--keep-low-quality",
        action="store_true",
        help=f"keep PDQ hashes with quality below {MIN_PDQ_QUALITY} (the bank refuses them)",
    )
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no notes")
    bar.add_argument(
        "--progress",
        action="store_true",
        help="show the progress bar even when stderr is not a terminal",
    )

    sub = p.add_argument_group("creating the case")
    target = sub.add_mutually_exclusive_group()
    target.add_argument(
        "--submit",
        metavar="URL",
        help="create the case at this bank (https://bank.example.org or its /api/v1/cases URL)",
    )
    target.add_argument(
        "--no-submit",
        dest="submit",
        action="store_const",
        const=None,
        help="only print the JSON (the default)",
    )

    def yes_no(key: str, yes: str, no: str, yes_help: str, no_help: str) -> None:
        g = sub.add_mutually_exclusive_group()
        g.add_argument(yes, dest=key, action="store_const", const=True, default=None, help=yes_help)
        g.add_argument(no, dest=key, action="store_const", const=False, help=no_help)

    yes_no(
        "in_image",
        "--in-image",
        "--not-in-image",
        "you are the person in the image or video",
        "you are not the person in it",
    )
    yes_no(
        "under_18_at_capture",
        "--under-18-at-capture",
        "--adult-at-capture",
        "you were under 18 when it was taken",
        "you were 18 or older when it was taken",
    )
    yes_no(
        "intimate",
        "--intimate",
        "--not-intimate",
        "it is nude, partly nude or sexual",
        "it is not",
    )
    sub.add_argument(
        "--pin",
        help="a PIN you choose (visible in your shell history; leave it out to get one)",
    )
    sub.add_argument("--email", help="send the case number to this address once (not stored)")
    sub.add_argument(
        "--json", action="store_true", help="print the server's raw JSON answer instead of text"
    )
    sub.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"network timeout (default {DEFAULT_TIMEOUT:g})",
    )
    sub.add_argument(
        "--allow-http",
        action="store_true",
        help="allow a plain http:// URL that is not this computer "
        "(hashes and PIN travel unencrypted)",
    )
    return p


def _print_case(answer: dict[str, Any], email_given: bool, out: TextIO) -> None:
    w = out.write
    w("Your case was created.\n\n")
    w(f"    Case number:  {answer.get('case_number')}\n")
    w(f"    PIN:          {answer.get('pin')}\n\n")
    w(
        "IMPORTANT: write down the case number and PIN now and keep them somewhere safe.\n"
        "They are shown only this once and cannot be recovered, by anyone (the bank keeps\n"
        "only a one-way hash of them). You need both to check the status of your case or\n"
        "to withdraw it.\n\n"
    )
    lst = answer.get("list")
    about = {
        "minor": "you were under 18 when it was taken",
        "adult": "you were 18 or older when it was taken",
    }.get(str(lst))
    w(f"List: {lst}" + (f" ({about})" if about else "") + "\n")
    hashes = answer.get("hashes") or []
    w(f"Hashes: {len(hashes)} (only the hashes were sent; your files stayed on this device)\n")
    for h in hashes:
        if isinstance(h, dict):
            w(f"  {h.get('algorithm', '?'):<4} {h.get('value', '?')}  {h.get('status', '')}\n")
    if email_given:
        w("\nThe case number is also sent once to the email address you gave; it is not stored.\n")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed by argparse
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE

    err = sys.stderr

    def usage(message: str) -> int:
        print(f"hashbank-hash: error: {message}", file=err)
        return EXIT_USAGE

    eligibility: dict[str, bool] = {}
    if args.submit is not None:
        try:
            endpoint = case_api_url(args.submit)
        except UsageError as exc:
            return usage(str(exc))
        parts = urlsplit(endpoint)
        if parts.scheme != "https" and not args.allow_http and not is_loopback(parts.hostname):
            return usage(
                f"{args.submit} is not https: the hashes and your PIN would travel "
                "unencrypted. Use https, or --allow-http if you really mean it."
            )
        try:
            eligibility = _resolve_eligibility(args)
        except UsageError as exc:
            return usage(str(exc))

    skipped: list[Path] = []
    files = list(iter_media(args.paths, args.recursive, skipped))

    def write(message: str) -> None:
        tqdm.write(message, file=sys.stderr)

    def note(message: str) -> None:
        if not args.quiet:
            write(f"note: {message}")

    if skipped:
        shown = ", ".join(str(s) for s in skipped[:10]) + (" ..." if len(skipped) > 10 else "")
        hint = "" if args.recursive else " (use -r to include subfolders)"
        note(f"left out {len(skipped)} item(s) in the folders given{hint}: {shown}")

    show_bar = len(files) > 1 and not args.quiet and (args.progress or _isatty(sys.stderr))
    results: list[HashResult] = []
    failures = 0
    with tqdm(
        files, total=len(files), file=sys.stderr, disable=not show_bar, unit="file", desc="Hashing"
    ) as bar:
        for path in bar:
            try:
                result = hash_file(path)
            except MediaError as exc:
                failures += 1
                write(f"error: {exc}")
                continue
            if result.frames > 1:
                note(
                    f"{path}: has {result.frames} frames; only the first one was hashed. If "
                    "what you want removed is only in a later frame, save that frame as PNG "
                    "and hash it too."
                )
            results.append(result)

    usable: list[HashResult] = []
    for r in results:
        if r.quality is not None and r.quality < MIN_PDQ_QUALITY:
            action = "kept (--keep-low-quality)" if args.keep_low_quality else "left out"
            write(
                f"warning: {r.file}: PDQ quality {r.quality} is below {MIN_PDQ_QUALITY}, so the "
                f"hash was {action}. The bank refuses such hashes: the image is too small, "
                "plain or blurry for platforms to match it reliably. Use a larger or sharper "
                "copy if you have one"
                + (
                    "."
                    if args.keep_low_quality
                    else ", or --keep-low-quality to include it anyway."
                )
            )
            if not args.keep_low_quality:
                continue
        usable.append(r)

    unique, dupes = dedupe(usable)
    for dup, first in dupes:
        note(f"{dup.file}: same hash as {first.file}; listed once.")

    too_many = len(unique) > MAX_HASHES_PER_CASE
    if too_many:
        write(
            f"{'error' if args.submit else 'warning'}: {len(unique)} different hashes, but a case "
            f"holds at most {MAX_HASHES_PER_CASE}. Split the files over several cases (up to "
            f"{MAX_HASHES_PER_CASE} each); each case gets its own case number and PIN."
        )

    if not files:
        write("error: no files to hash.")
    if args.submit is None:
        body = {"hashes": [r.to_api(with_path=args.with_paths) for r in unique]}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        if failures:
            write(f"{failures} file(s) could not be hashed; the JSON above leaves them out.")
        return EXIT_FAILED if failures or not unique else EXIT_OK

    # --submit
    if failures:
        write(
            f"error: not submitting: {failures} file(s) could not be hashed, and a case "
            "can't be extended later. Fix them or leave them out, then run again."
        )
        return EXIT_FAILED
    if not unique:
        write("error: not submitting: there is no usable hash.")
        return EXIT_FAILED
    if too_many:
        return EXIT_USAGE

    body = build_case_body(unique, pin=args.pin, email=args.email, **eligibility)
    try:
        answer = submit_case(args.submit, body, timeout=args.timeout)
    except SubmitError as exc:
        if args.json and exc.raw is not None:
            sys.stdout.write(exc.raw.rstrip("\n") + "\n")
        elif exc.raw is not None and exc.status is not None and 200 <= exc.status < 300:
            # Something was created but looks odd: don't lose what the server said.
            sys.stdout.write(exc.raw.rstrip("\n") + "\n")
        lines = ["error: the case was not created."]
        if exc.status is not None and exc.status >= 400:
            lines = [f"error: the server refused the case (HTTP {exc.status}):"]
        lines.append(f"  {exc.message}")
        if exc.field:
            lines.append(f"  (field: {exc.field})")
        write("\n".join(lines))
        return EXIT_FAILED

    if args.json:
        sys.stdout.write(json.dumps(answer, indent=2, ensure_ascii=False) + "\n")
    else:
        _print_case(answer, args.email is not None, sys.stdout)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
