"""The page's video hashing (hash-file.js with the vendored spark-md5) under Node.

Files are read in pieces exactly as the worker reads them (``File.slice``),
and the MD5 must equal expected.csv's, for the production piece size and for
odd sizes that cut MD5's 64-byte blocks anywhere.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TESTDATA = (REPO / ".." / "shared" / "testdata").resolve()
EXPECTED_CSV = TESTDATA / "expected.csv"
DRIVER = Path(__file__).resolve().parent / "js" / "md5_driver.mjs"
NODE = shutil.which("node")
CHUNK_SIZE = 4 * 1024 * 1024  # hash-file.js CHUNK_SIZE

pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed: hash-file.js (the page's hasher) can't be run"
)


def _videos() -> dict[Path, str]:
    if not EXPECTED_CSV.is_file():
        return {}
    with EXPECTED_CSV.open(newline="") as f:
        return {
            TESTDATA / row["path"]: row["md5_hex"]
            for row in csv.DictReader(f)
            if row["kind"] == "video"
        }


def _hash(chunk_size: int, *paths: Path) -> list[dict[str, Any]]:
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(DRIVER), str(chunk_size), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _assert_progress(progress: list[float], size: int, chunk_size: int) -> None:
    assert progress[0] == 0
    assert progress[-1] == 1
    assert progress == sorted(progress)
    assert len(progress) == 1 + -(-size // chunk_size)  # once at the start, then per piece


@pytest.mark.parametrize("chunk_size", [CHUNK_SIZE, 65_543, 1_000_003])
def test_testdata_videos_md5_like_expected_csv(chunk_size: int) -> None:
    videos = _videos()
    if not videos:
        pytest.skip(f"no test videos: {EXPECTED_CSV} is missing")
    results = _hash(chunk_size, *videos)
    assert [r["path"] for r in results] == [str(p) for p in videos]
    for result, (path, md5_hex) in zip(results, videos.items(), strict=True):
        assert result["algorithm"] == "md5"
        assert result["value"] == md5_hex, path
        _assert_progress(result["progress"], path.stat().st_size, chunk_size)


def test_a_video_of_several_pieces_md5s_like_hashlib(tmp_path: Path) -> None:
    video = tmp_path / "long.MOV"
    data = hashlib.shake_256(b"hashbank").digest(2 * CHUNK_SIZE + 12_345)
    video.write_bytes(data)
    [result] = _hash(CHUNK_SIZE, video)
    assert result["value"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    _assert_progress(result["progress"], len(data), CHUNK_SIZE)
    assert len(result["progress"]) == 4


def test_formats_a_browser_cannot_decode_are_refused(tmp_path: Path) -> None:
    names = ["a.psd", "b.TIFF", "c.tif", "d.xcf", "e.tga", "f.miff", "g.dcm", "h.xpm", "i.pcx"]
    names += ["notes.txt", "no-extension"]
    paths = []
    for name in names:
        paths.append(tmp_path / name)
        paths[-1].write_bytes(b"not empty")
    assert [r.get("error") for r in _hash(CHUNK_SIZE, *paths)] == ["unsupported"] * len(names)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    # As the Python tool refuses it: the MD5 of nothing matches nothing.
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert _hash(CHUNK_SIZE, empty) == [{"path": str(empty), "error": "empty"}]
