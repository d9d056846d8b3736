"""Tests for scripts/hash_media.py (the ``hashbank-hash`` command).

No Django or database is needed, except for the ``--submit`` tests against the
real case API (live server), which skip until ``cases.api`` can be imported.
"""

from __future__ import annotations

import csv
import hashlib
import http.server
import io
import json
import shutil
import struct
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from scripts import hash_media
from scripts.hash_media import (
    HashResult,
    MediaError,
    UnsupportedFormatError,
    build_case_body,
    case_api_url,
    hash_file,
    iter_media,
    main,
    md5_file,
    submit_case,
)

REPO = Path(__file__).resolve().parents[2]
TESTDATA = (REPO / ".." / "shared" / "testdata").resolve()
EXPECTED_CSV = TESTDATA / "expected.csv"
SCRIPT = REPO / "scripts" / "hash_media.py"

BRIDGE = TESTDATA / "pdq" / "bridge-mods" / "aaa-orig.jpg"
BRIDGE_COPY = TESTDATA / "pdq" / "dih" / "bridge-1-original.jpg"  # byte-identical
LOW_Q = TESTDATA / "pdq" / "misc" / "q0003.jpg"  # quality 3
VIDEO = TESTDATA / "video" / "chair-19-sd-bar.mp4"


def _rows() -> list[dict[str, str]]:
    if not EXPECTED_CSV.is_file():
        return []
    with EXPECTED_CSV.open(newline="") as f:
        return list(csv.DictReader(f))


ROWS = _rows()
EXPECTED = {row["path"]: row for row in ROWS}


def expected(path: Path) -> dict[str, str]:
    return EXPECTED[path.relative_to(TESTDATA).as_posix()]


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def is_hex(value: str, length: int) -> bool:
    return len(value) == length and all(c in "0123456789abcdef" for c in value)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Local test servers must be reached directly, whatever the environment says.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def test_reference_data_present() -> None:
    assert EXPECTED_CSV.is_file(), f"reference test data missing: {EXPECTED_CSV}"
    assert len(ROWS) >= 30


# ------------------------------------------------------------- reference values


@pytest.mark.parametrize("row", ROWS, ids=[r["path"] for r in ROWS])
def test_hash_file_matches_expected_csv(row: dict[str, str]) -> None:
    path = TESTDATA / row["path"]
    result = hash_file(path)
    assert isinstance(result, HashResult)
    assert result.file == path
    if row["kind"] == "image":
        assert result.algorithm == "pdq"
        assert result.value == row["pdq_hex"]
        assert result.quality == int(row["pdq_quality"])
    else:
        assert row["kind"] == "video"
        assert result.algorithm == "md5"
        assert result.value == row["md5_hex"]
        assert result.quality is None


def test_md5_of_images_in_csv_is_file_md5() -> None:
    # Sanity check of the CSV itself and of md5_file on small files.
    for row in ROWS:
        assert md5_file(TESTDATA / row["path"]) == row["md5_hex"]


# ------------------------------------------------------------------ file formats


def test_pillow_opens_the_listed_formats_except_xcf_miff_dcm() -> None:
    readable = set(hash_media.pillow_readable_extensions())
    assert readable == {
        "jpeg",
        "jpg",
        "png",
        "gif",
        "psd",
        "tiff",
        "tif",
        "tga",
        "ico",
        "xpm",
        "pcx",
        "bmp",
    }
    # Risky or unrelated decoders (EPS runs Ghostscript) are never tried.
    assert "EPS" not in hash_media.pillow_formats()


def _square_source(tmp_path: Path) -> Image.Image:
    """A 256x256 crop of the bridge photo (square, so .ico keeps every pixel)."""
    with Image.open(BRIDGE) as im:
        return im.convert("RGB").crop((298, 0, 1302, 1004)).resize((256, 256))


def _write_xpm(im: Image.Image, path: Path) -> None:
    """Pillow can read XPM but not write it: write a 64-colour one by hand."""
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789#$"
    q = im.quantize(64)
    pal = q.getpalette() or []
    width, height = q.size
    lines = ["/* XPM */", "static char *image[] = {", f'"{width} {height} 64 1",']
    lines += [
        f'"{chars[i]} c #{pal[3 * i]:02x}{pal[3 * i + 1]:02x}{pal[3 * i + 2]:02x}",'
        for i in range(64)
    ]
    lines += ['"' + "".join(chars[v] for v in row) + '",' for row in np.asarray(q)]
    lines[-1] = lines[-1].rstrip(",")
    lines.append("};")
    path.write_text("\n".join(lines) + "\n")


def _write_psd(im: Image.Image, path: Path) -> None:
    """Pillow can read PSD but not write it: a minimal uncompressed RGB PSD."""
    width, height = im.size
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3)
    sections = struct.pack(">III", 0, 0, 0)  # colour mode data, resources, layers
    pixels = np.asarray(im)
    planes = b"".join(pixels[:, :, c].tobytes() for c in range(3))
    path.write_bytes(header + sections + struct.pack(">H", 0) + planes)


WRITERS = {
    "png": lambda im, p: im.save(p),
    "jpg": lambda im, p: im.save(p, quality=90),
    "jpeg": lambda im, p: im.save(p, quality=90),
    "gif": lambda im, p: im.save(p),
    "tiff": lambda im, p: im.save(p),
    "tif": lambda im, p: im.save(p),
    "bmp": lambda im, p: im.save(p),
    "pcx": lambda im, p: im.save(p),
    "ico": lambda im, p: im.save(p, sizes=[(256, 256)]),
    "tga": lambda im, p: im.save(p),
    "xpm": _write_xpm,
    "psd": _write_psd,
    "PNG": lambda im, p: im.save(p, format="PNG"),  # upper-case extension
    "JPG": lambda im, p: im.save(p, format="JPEG", quality=90),
}


@pytest.mark.parametrize("ext", list(WRITERS))
def test_generated_formats_hash_close_to_source(tmp_path: Path, ext: str) -> None:
    source = _square_source(tmp_path)
    source.save(tmp_path / "source.png")
    reference = hash_file(tmp_path / "source.png")
    assert reference.quality == 100

    path = tmp_path / f"image.{ext}"
    WRITERS[ext](source, path)
    result = hash_file(path)
    assert result.algorithm == "pdq"
    assert is_hex(result.value, 64)
    assert result.quality is not None and result.quality >= 50
    assert distance(result.value, reference.value) <= 20, ext


@pytest.mark.parametrize(
    ("mode", "ext"),
    [("RGBA", "png"), ("LA", "png"), ("P", "png"), ("L", "png"), ("CMYK", "tiff")],
)
def test_modes_are_converted_to_rgb(tmp_path: Path, mode: str, ext: str) -> None:
    source = _square_source(tmp_path)
    source.save(tmp_path / "source.png")
    reference = hash_file(tmp_path / "source.png")
    path = tmp_path / f"{mode}.{ext}"
    source.convert(mode).save(path)
    with Image.open(path) as im:
        assert im.mode == mode
    result = hash_file(path)
    assert result.quality == 100
    assert distance(result.value, reference.value) <= 10


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    grey = _square_source(tmp_path).convert("L")
    grey.save(tmp_path / "grey8.png")
    wide = np.asarray(grey).astype(np.uint16) * 257
    Image.fromarray(wide).save(tmp_path / "grey16.png")
    with Image.open(tmp_path / "grey16.png") as im:
        assert im.mode == "I;16"
    result = hash_file(tmp_path / "grey16.png")
    # A plain .convert("RGB") would clip it to a white image (quality 0).
    assert result.quality == 100
    assert result.value == hash_file(tmp_path / "grey8.png").value


def test_animated_gif_hashes_the_first_frame(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _square_source(tmp_path)
    other = (
        Image.open(TESTDATA / "pdq" / "misc" / "pen-and-coaster.png")
        .convert("RGB")
        .resize(first.size)
    )
    first.save(tmp_path / "still.gif")
    first.save(tmp_path / "anim.gif", save_all=True, append_images=[other], duration=100, loop=0)
    with Image.open(tmp_path / "anim.gif") as im:
        assert im.n_frames == 2

    result = hash_file(tmp_path / "anim.gif")
    assert result.frames == 2
    assert result.value == hash_file(tmp_path / "still.gif").value

    code, out, err = run(capsys, tmp_path / "anim.gif")
    assert code == 0
    assert json.loads(out)["hashes"][0]["value"] == result.value
    assert "only the first one was hashed" in err


def test_decompression_bomb_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.new("RGB", (100, 100), "white").save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 > 2 x 1,000
    with pytest.raises(MediaError, match="decompression bomb"):
        hash_file(tmp_path / "big.png")
    code, out, err = run(capsys, tmp_path / "big.png")
    assert code == 1
    assert json.loads(out) == {"hashes": []}
    assert "decompression bomb" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------ MD5 streaming


def test_md5_streams_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "big.mp4"
    size = 50 * 1024 * 1024 + 12345
    with path.open("wb") as f:  # sparse, with a few real bytes in it
        for offset in (0, 1024 * 1024 - 1, 7_777_777, size - 5):
            f.seek(offset)
            f.write(b"hashbank")
        f.truncate(size)
    with path.open("rb") as f:
        expected_md5 = hashlib.file_digest(f, "md5").hexdigest()

    tracemalloc.start()
    try:
        result = hash_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result == HashResult("md5", expected_md5, None, path)
    assert peak < 8 * 1024 * 1024, f"read too much at once: peak {peak} bytes"


@pytest.mark.parametrize("chunk", [1, 7, 1024])
def test_md5_chunk_boundaries(tmp_path: Path, chunk: int) -> None:
    data = bytes(range(256)) * 13 + b"tail"
    (tmp_path / "v.mov").write_bytes(data)
    assert md5_file(tmp_path / "v.mov", chunk_size=chunk) == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("ext", ["mp4", "MOV", "avi", "qt", "wmv"])
def test_video_extensions_get_md5(tmp_path: Path, ext: str) -> None:
    (tmp_path / f"clip.{ext}").write_bytes(b"not really a video, but only the bytes count")
    result = hash_file(tmp_path / f"clip.{ext}")
    assert result.algorithm == "md5"
    assert result.value == hashlib.md5(b"not really a video, but only the bytes count").hexdigest()


# ------------------------------------------------------------------ bad files


def test_unsupported_extension(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnsupportedFormatError) as info:
        hash_file(tmp_path / "notes.txt")
    message = str(info.value)
    assert "'.txt'" in message
    for ext in hash_media.IMAGE_EXTENSIONS + hash_media.VIDEO_EXTENSIONS:
        assert ext in message


@pytest.mark.parametrize(
    ("name", "content", "expect"),
    [
        ("drawing.xcf", b"gimp xcf v011\x00" + b"\x00" * 64, "GIMP"),
        (
            "picture.miff",
            b"id=ImageMagick\nclass=DirectClass columns=1 rows=1\n\x0c\n:\x1a\0\0\0",
            "magick",
        ),
        ("scan.dcm", b"\x00" * 128 + b"DICM" + b"\x00" * 64, "DICOM"),
        ("garbage.xcf", b"\x13\x37" * 100, "GIMP"),
        ("corrupt.png", bytes(range(256)) * 4, "damaged"),
    ],
)
def test_unreadable_images_get_a_conversion_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, expect: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MediaError) as info:
        hash_file(path)
    assert expect in info.value.message
    assert "magick" in info.value.message
    assert f"{path.stem}-converted.png" in info.value.message

    code, out, err = run(capsys, path, BRIDGE)
    assert code == 1
    assert [h["value"] for h in json.loads(out)["hashes"]] == [expected(BRIDGE)["pdq_hex"]]
    assert "magick" in err
    assert "Traceback" not in err


def test_truncated_image(tmp_path: Path) -> None:
    path = tmp_path / "half.jpg"
    path.write_bytes(BRIDGE.read_bytes()[:5000])
    with pytest.raises(MediaError, match="damaged"):
        hash_file(path)


def test_file_of_another_type_says_what_it_really_is(tmp_path: Path) -> None:
    shutil.copy(VIDEO, tmp_path / "clip.jpg")
    with pytest.raises(MediaError, match="really a video"):
        hash_file(tmp_path / "clip.jpg")
    (tmp_path / "photo.png").write_bytes(b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 32)
    with pytest.raises(MediaError, match="WebP"):
        hash_file(tmp_path / "photo.png")


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="No such file"):
        hash_file(tmp_path / "gone.png")
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(MediaError, match="empty"):
        hash_file(tmp_path / "empty.mp4")


# --------------------------------------------------------------- finding files


def test_iter_media_folders(tmp_path: Path) -> None:
    (tmp_path / "b.jpg").write_bytes(b"x")
    (tmp_path / "a.MP4").write_bytes(b"x")
    (tmp_path / "readme.txt").write_text("x")
    (tmp_path / ".hidden.png").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.png").write_bytes(b"x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "d.png").write_bytes(b"x")
    explicit = tmp_path / "readme.txt"

    skipped: list[Path] = []
    flat = list(iter_media([tmp_path, explicit], recursive=False, skipped=skipped))
    assert flat == [tmp_path / "a.MP4", tmp_path / "b.jpg", explicit]
    assert set(skipped) == {
        tmp_path / "readme.txt",
        tmp_path / ".hidden.png",
        tmp_path / "sub",
        tmp_path / ".git",
    }

    deep = list(iter_media([tmp_path], recursive=True))
    assert deep == [tmp_path / "a.MP4", tmp_path / "b.jpg", tmp_path / "sub" / "c.png"]


def test_cli_folder_recursive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sub").mkdir()
    shutil.copy(BRIDGE, tmp_path / "sub" / "photo.jpg")
    shutil.copy(VIDEO, tmp_path / "clip.mp4")
    (tmp_path / "notes.txt").write_text("not media")

    code, out, err = run(capsys, tmp_path)
    assert code == 0
    assert [h["algorithm"] for h in json.loads(out)["hashes"]] == ["md5"]
    assert "-r" in err

    code, out, _ = run(capsys, "-r", tmp_path)
    assert code == 0
    assert [h["value"] for h in json.loads(out)["hashes"]] == [
        expected(VIDEO)["md5_hex"],
        expected(BRIDGE)["pdq_hex"],
    ]


# --------------------------------------------------------------------------- CLI


def test_cli_mix_of_image_and_video(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, BRIDGE, VIDEO)
    assert code == 0
    # Exactly the API body shape: no file names by default.
    assert json.loads(out) == {
        "hashes": [
            {
                "algorithm": "pdq",
                "value": expected(BRIDGE)["pdq_hex"],
                "quality": int(expected(BRIDGE)["pdq_quality"]),
            },
            {"algorithm": "md5", "value": expected(VIDEO)["md5_hex"]},
        ]
    }
    assert BRIDGE.name not in out and VIDEO.name not in out
    assert "Hashing" not in err  # stderr is not a terminal: no progress bar


def test_cli_with_paths(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--with-paths", BRIDGE, VIDEO)
    assert code == 0
    assert [h["file"] for h in json.loads(out)["hashes"]] == [str(BRIDGE), str(VIDEO)]


def test_cli_deduplicates_identical_hashes(capsys: pytest.CaptureFixture[str]) -> None:
    assert BRIDGE.read_bytes() == BRIDGE_COPY.read_bytes()
    code, out, err = run(capsys, BRIDGE, BRIDGE_COPY, VIDEO, VIDEO)
    assert code == 0
    hashes = json.loads(out)["hashes"]
    assert [h["value"] for h in hashes] == [expected(BRIDGE)["pdq_hex"], expected(VIDEO)["md5_hex"]]
    assert "listed once" in err


def test_cli_low_quality_is_excluded_with_warning(capsys: pytest.CaptureFixture[str]) -> None:
    assert expected(LOW_Q)["pdq_quality"] == "3"
    code, out, err = run(capsys, LOW_Q, BRIDGE)
    assert code == 0
    assert [h["value"] for h in json.loads(out)["hashes"]] == [expected(BRIDGE)["pdq_hex"]]
    assert "quality 3" in err and "below 50" in err and "refuses" in err

    code, out, err = run(capsys, "--keep-low-quality", LOW_Q, BRIDGE)
    assert code == 0
    hashes = json.loads(out)["hashes"]
    assert {"algorithm": "pdq", "value": expected(LOW_Q)["pdq_hex"], "quality": 3} in hashes
    assert "quality 3" in err

    code, out, _ = run(capsys, LOW_Q)  # nothing usable left
    assert code == 1
    assert json.loads(out) == {"hashes": []}


def test_cli_unsupported_and_corrupt_files_still_print_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.docx").write_bytes(b"PK\x03\x04")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    code, out, err = run(capsys, tmp_path / "notes.docx", BRIDGE, tmp_path / "broken.png", VIDEO)
    assert code == 1
    assert len(json.loads(out)["hashes"]) == 2
    assert "'.docx' files are not accepted" in err and "jpeg" in err and "wmv" in err
    assert "broken.png" in err and "magick" in err
    assert "2 file(s) could not be hashed" in err
    assert "Traceback" not in err


def _videos(tmp_path: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        p = tmp_path / f"clip{i:02d}.mp4"
        p.write_bytes(f"video {i}".encode())
        paths.append(p)
    return paths


def test_cli_more_than_20_hashes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *_videos(tmp_path, 21))
    assert code == 0
    assert len(json.loads(out)["hashes"]) == 21  # still printed, for use without --submit
    assert "21 different hashes" in err and "at most 20" in err

    code, out, err = run(capsys, *_videos(tmp_path, 20))
    assert code == 0
    assert "at most 20" not in err


def test_cli_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--progress", BRIDGE, VIDEO)
    assert code == 0
    assert "Hashing" in err and "2/2" in err
    code, _, err = run(capsys, "--progress", VIDEO)  # one file: no bar
    assert "Hashing" not in err
    code, _, err = run(capsys, "-q", BRIDGE, BRIDGE_COPY)
    assert "Hashing" not in err and "listed once" not in err


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys)[0] == 2
    assert run(capsys, "--quiet", "--progress", VIDEO)[0] == 2
    assert run(capsys, "--help")[0] == 0
    code, _, err = run(capsys, "--submit", "ftp://bank.example.org", VIDEO)
    assert code == 2 and "http" in err
    code, _out, err = run(
        capsys,
        "--submit",
        "http://bank.example.org",
        "--in-image",
        "--adult-at-capture",
        "--intimate",
        VIDEO,
    )
    assert code == 2 and "https" in err and "--allow-http" in err


def test_cli_runs_as_a_command(tmp_path: Path) -> None:
    command = Path(sys.executable).parent / "hashbank-hash"
    argv = [str(command)] if command.exists() else [sys.executable, str(SCRIPT)]
    proc = subprocess.run(
        [*argv, str(BRIDGE), str(BRIDGE_COPY), str(VIDEO), str(LOW_Q), str(tmp_path / "x.gif")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr  # x.gif does not exist
    assert json.loads(proc.stdout) == {
        "hashes": [
            {"algorithm": "pdq", "value": expected(BRIDGE)["pdq_hex"], "quality": 100},
            {"algorithm": "md5", "value": expected(VIDEO)["md5_hex"]},
        ]
    }
    assert "x.gif: No such file" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "\r" not in proc.stderr  # no progress bar when stderr is not a terminal


def test_script_runs_directly_without_django() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(VIDEO)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=str(REPO / "scripts"),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["hashes"][0]["value"] == expected(VIDEO)["md5_hex"]
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import hash_media; "
        "print('django' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(REPO / "scripts")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert proc.stdout.strip() == "False"


# --------------------------------------------------------------- case API helpers


@pytest.mark.parametrize(
    ("given", "endpoint"),
    [
        ("https://bank.example.org", "https://bank.example.org/api/v1/cases"),
        ("https://bank.example.org/", "https://bank.example.org/api/v1/cases"),
        ("https://bank.example.org/api/v1/cases", "https://bank.example.org/api/v1/cases"),
        ("https://bank.example.org/api/v1/cases/", "https://bank.example.org/api/v1/cases"),
        ("http://localhost:8000/bank", "http://localhost:8000/bank/api/v1/cases"),
    ],
)
def test_case_api_url(given: str, endpoint: str) -> None:
    assert case_api_url(given) == endpoint


def test_build_case_body_has_hashes_and_answers_only() -> None:
    results = [
        HashResult("pdq", "a" * 64, 90, Path("/secret/name.jpg")),
        HashResult("md5", "b" * 32, None, Path("/secret/clip.mp4")),
    ]
    body = build_case_body(results, in_image=True, under_18_at_capture=False, intimate=True)
    assert body == {
        "eligibility": {
            "in_image": True,
            "under_18_at_capture": False,
            "has_media": True,
            "intimate": True,
        },
        "hashes": [
            {"algorithm": "pdq", "value": "a" * 64, "quality": 90},
            {"algorithm": "md5", "value": "b" * 32},
        ],
    }
    with_extras = build_case_body(
        [{"algorithm": "md5", "value": "c" * 32, "file": "x.mp4"}],
        in_image=True,
        under_18_at_capture=True,
        intimate=True,
        pin="482913",
        email="me@example.org",
    )
    assert with_extras["hashes"] == [{"algorithm": "md5", "value": "c" * 32}]
    assert with_extras["pin"] == "482913" and with_extras["email"] == "me@example.org"


# ------------------------------------------------- --submit against a stub server


class _Stub:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 201
        self.body: bytes = b"{}"
        self.headers: dict[str, str] = {"Content-Type": "application/json"}
        self.url = ""


@pytest.fixture
def stub() -> Iterator[_Stub]:
    """A tiny HTTP server that records what it gets and answers as told."""
    state = _Stub()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append({"path": self.path, "headers": dict(self.headers), "raw": raw})
            self.send_response(state.status)
            for key, value in state.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


ELIGIBLE = ["--in-image", "--adult-at-capture", "--intimate"]
CASE_ANSWER = {
    "case_number": "K7QW-3MXP-9HTR-4ZC2",
    "pin": "583920",
    "list": "adult",
    "hashes": [],
    "created_at": "2025-01-01T00:00:00Z",
}


def _answer(stub: _Stub, status: int, payload: Any) -> None:
    stub.status = status
    stub.body = json.dumps(payload).encode()


def test_submit_creates_a_case(stub: _Stub, capsys: pytest.CaptureFixture[str]) -> None:
    answer = dict(CASE_ANSWER)
    answer["hashes"] = [
        {"algorithm": "pdq", "value": expected(BRIDGE)["pdq_hex"], "status": "added"},
        {"algorithm": "md5", "value": expected(VIDEO)["md5_hex"], "status": "added"},
    ]
    _answer(stub, 201, answer)
    code, out, err = run(
        capsys, "--submit", stub.url, *ELIGIBLE, "--with-paths", BRIDGE, BRIDGE_COPY, VIDEO, LOW_Q
    )
    assert code == 0, err
    assert "K7QW-3MXP-9HTR-4ZC2" in out and "583920" in out
    assert "only this once" in out and "cannot be recovered" in out
    assert "List: adult" in out
    assert "K7QW" not in err and "583920" not in err

    (request,) = stub.requests
    assert request["path"] == "/api/v1/cases"
    assert request["headers"]["Content-Type"] == "application/json"
    assert len(request["raw"]) < 1000  # hashes only: no file bytes
    for name in (BRIDGE.name, VIDEO.name, "bridge", "chair"):
        assert name.encode() not in request["raw"]
    assert json.loads(request["raw"]) == {
        "eligibility": {
            "in_image": True,
            "under_18_at_capture": False,
            "has_media": True,
            "intimate": True,
        },
        "hashes": [
            {"algorithm": "pdq", "value": expected(BRIDGE)["pdq_hex"], "quality": 100},
            {"algorithm": "md5", "value": expected(VIDEO)["md5_hex"]},
        ],
    }


def test_submit_json_pin_email_and_minor(stub: _Stub, capsys: pytest.CaptureFixture[str]) -> None:
    _answer(stub, 201, {**CASE_ANSWER, "list": "minor"})
    code, out, _ = run(
        capsys,
        "--submit",
        stub.url + "/api/v1/cases/",
        "--in-image",
        "--under-18-at-capture",
        "--intimate",
        "--pin",
        "271828",
        "--email",
        "me@example.org",
        "--json",
        VIDEO,
    )
    assert code == 0
    assert json.loads(out) == {**CASE_ANSWER, "list": "minor"}
    sent = json.loads(stub.requests[0]["raw"])
    assert sent["eligibility"]["under_18_at_capture"] is True
    assert sent["pin"] == "271828" and sent["email"] == "me@example.org"


def test_submit_refused_prints_message_and_field(
    stub: _Stub, capsys: pytest.CaptureFixture[str]
) -> None:
    _answer(
        stub,
        400,
        {
            "code": "not_eligible",
            "message": "This service is for intimate images only. Other help: ...",
            "field": "eligibility.intimate",
        },
    )
    code, out, err = run(
        capsys, "--submit", stub.url, "--in-image", "--adult-at-capture", "--not-intimate", VIDEO
    )
    assert code == 1
    assert out == ""
    assert "This service is for intimate images only" in err
    assert "eligibility.intimate" in err
    assert json.loads(stub.requests[0]["raw"])["eligibility"]["intimate"] is False


def test_submit_server_error_and_redirect(stub: _Stub, capsys: pytest.CaptureFixture[str]) -> None:
    stub.status, stub.body, stub.headers = 500, b"<html>oops</html>", {"Content-Type": "text/html"}
    code, _, err = run(capsys, "--submit", stub.url, *ELIGIBLE, VIDEO)
    assert code == 1 and "500" in err

    stub.status, stub.body = 307, b""
    stub.headers = {"Location": "https://elsewhere.example.org/api/v1/cases"}
    code, _, err = run(capsys, "--submit", stub.url, *ELIGIBLE, VIDEO)
    assert code == 1 and "elsewhere.example.org" in err
    assert len(stub.requests) == 2  # the redirect was not followed


def test_submit_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(hash_media.SubmitError, match="Could not connect"):
        submit_case("http://127.0.0.1:9", {"hashes": []}, timeout=5)
    code, _, err = run(capsys, "--submit", "http://127.0.0.1:9", *ELIGIBLE, VIDEO)
    assert code == 1 and "Could not connect" in err and "Traceback" not in err


def test_submit_refuses_more_than_20(
    stub: _Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run(capsys, "--submit", stub.url, *ELIGIBLE, *_videos(tmp_path, 21))
    assert code == 2
    assert "at most 20" in err
    assert stub.requests == []


def test_submit_refuses_when_a_file_failed(
    stub: _Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--submit", stub.url, *ELIGIBLE, VIDEO, tmp_path / "missing.png")
    assert code == 1 and "not submitting" in err
    code, _, err = run(capsys, "--submit", stub.url, *ELIGIBLE, LOW_Q)
    assert code == 1 and "no usable hash" in err
    assert stub.requests == []


def test_submit_missing_answer_without_terminal(
    stub: _Stub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _, err = run(capsys, "--submit", stub.url, "--in-image", "--intimate", VIDEO)
    assert code == 2
    assert "--under-18-at-capture or --adult-at-capture" in err
    assert stub.requests == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_submit_asks_missing_answers_in_a_terminal(
    stub: _Stub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _answer(stub, 201, CASE_ANSWER)
    monkeypatch.setattr(sys, "stdin", _Terminal("maybe\nyes\nno\ny\n"))
    code, out, err = run(capsys, "--submit", stub.url, VIDEO)
    assert code == 0, err
    assert "Are you the person" in err and "under 18" in err and "intimate" in err
    assert "Please answer yes or no" in err
    assert json.loads(stub.requests[0]["raw"])["eligibility"] == {
        "in_image": True,
        "under_18_at_capture": False,
        "has_media": True,
        "intimate": True,
    }
    assert CASE_ANSWER["pin"] in out


# ------------------------------------------------- --submit against the real case API


def _case_api_error() -> str | None:
    try:
        import cases.api  # noqa: F401
    except Exception as exc:  # not written yet, or Django not configured
        return f"{type(exc).__name__}: {exc}"
    return None


CASE_API_ERROR = _case_api_error()
needs_case_api = pytest.mark.skipif(CASE_API_ERROR is not None, reason="case API not available yet")


def _django_db_transaction() -> pytest.MarkDecorator:
    # The marker exists only while pytest-django is active (not with -p no:django).
    try:
        # serialized_rollback: the flush after a transactional test would also
        # drop the lists that the first migration creates.
        return pytest.mark.django_db(transaction=True, serialized_rollback=True)
    except pytest.fail.Exception:
        return pytest.mark.skip(reason="pytest-django is not active")


django_db_transaction = _django_db_transaction()


@pytest.fixture
def wire(
    monkeypatch: pytest.MonkeyPatch,
) -> list[tuple[requests.PreparedRequest, requests.Response]]:
    """Record every HTTP request the client sends, and the answer."""
    seen: list[tuple[requests.PreparedRequest, requests.Response]] = []
    original = requests.Session.send

    def send(
        self: requests.Session, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        response = original(self, request, **kwargs)
        seen.append((request, response))
        return response

    monkeypatch.setattr(requests.Session, "send", send)
    return seen


def _assert_hashes_only(request: requests.PreparedRequest) -> dict[str, Any]:
    raw = request.body if isinstance(request.body, bytes) else str(request.body).encode()
    assert len(raw) < 1000
    for name in (BRIDGE.name, VIDEO.name):
        assert name.encode() not in raw
    sent = json.loads(raw)
    assert set(sent) == {"eligibility", "hashes"}
    assert all(set(h) <= {"algorithm", "value", "quality"} for h in sent["hashes"])
    return sent


@needs_case_api
@django_db_transaction
@pytest.mark.parametrize(
    ("flag", "listed"), [("--adult-at-capture", "adult"), ("--under-18-at-capture", "minor")]
)
def test_live_submit_creates_case(
    live_server: Any,
    wire: list[tuple[requests.PreparedRequest, requests.Response]],
    capsys: pytest.CaptureFixture[str],
    flag: str,
    listed: str,
) -> None:
    code, out, err = run(
        capsys,
        "--submit",
        live_server.url,
        "--in-image",
        flag,
        "--intimate",
        "--with-paths",
        BRIDGE,
        VIDEO,
    )
    assert code == 0, err
    (request, response), *_ = wire
    assert request.url == live_server.url + "/api/v1/cases"
    assert response.status_code == 201
    answer = response.json()
    assert answer["list"] == listed
    assert answer["case_number"] and answer["pin"]
    assert answer["case_number"] in out and str(answer["pin"]) in out
    assert answer["case_number"] not in err and str(answer["pin"]) not in err
    assert f"List: {listed}" in out
    sent = _assert_hashes_only(request)
    assert sent["hashes"] == [
        {"algorithm": "pdq", "value": expected(BRIDGE)["pdq_hex"], "quality": 100},
        {"algorithm": "md5", "value": expected(VIDEO)["md5_hex"]},
    ]
    assert {(h["algorithm"], h["value"]) for h in answer["hashes"]} == {
        (h["algorithm"], h["value"]) for h in sent["hashes"]
    }


@needs_case_api
@django_db_transaction
def test_live_submit_json(
    live_server: Any,
    wire: list[tuple[requests.PreparedRequest, requests.Response]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "--submit", live_server.url, *ELIGIBLE, "--json", VIDEO)
    assert code == 0, err
    answer = json.loads(out)
    assert answer == wire[0][1].json()
    assert answer["list"] == "adult"


@needs_case_api
@django_db_transaction
def test_live_submit_refused(
    live_server: Any,
    wire: list[tuple[requests.PreparedRequest, requests.Response]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        capsys,
        "--submit",
        live_server.url,
        "--in-image",
        "--adult-at-capture",
        "--not-intimate",
        VIDEO,
    )
    assert code == 1
    (request, response), *_ = wire
    assert 400 <= response.status_code < 500
    refusal = response.json()
    assert refusal["message"] and refusal["message"] in err
    if refusal.get("field"):
        assert refusal["field"] in err
    assert "case_number" not in out
    _assert_hashes_only(request)


def test_a_photo_with_exif_orientation_is_hashed_upright(tmp_path: Path) -> None:
    """Phones save portrait photos sideways with an orientation tag; the hash is of what
    a person sees (as the web page's is), not of the stored, sideways pixels."""
    pixels = np.zeros((120, 200, 3), np.uint8)
    pixels[:, :70] = (230, 40, 40)
    pixels[20:50, 120:190] = (20, 200, 90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    tagged = tmp_path / "portrait.jpg"
    Image.fromarray(pixels).save(tagged, quality=95, exif=exif)
    with Image.open(tagged) as im:
        upright = tmp_path / "upright.png"
        im.transpose(Image.Transpose.ROTATE_270).save(upright)
        sideways = tmp_path / "sideways.png"
        im.save(sideways)
    result = hash_media.hash_file(tagged)
    assert distance(result.value, hash_media.hash_file(upright).value) == 0
    assert distance(result.value, hash_media.hash_file(sideways).value) > 32
