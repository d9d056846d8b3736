"""The page's PDQ (cases/static/cases/pdq.js) agrees with the Python tool's.

Every image in ../shared/testdata is decoded once with Pillow exactly as
scripts/hash_media.py decodes it for pdqhash (its own ``_to_rgb``, no EXIF
transpose), and the same pixels, as RGBA, are hashed by pdq.js under Node.
The hash must be within 4 bits and the quality within 2 of pdqhash's (in
practice both are identical: pdq.js rounds to float32 where the reference
does). Synthetic images of awkward shapes check the filter windows at their
edges the same way.

Run with ``-s`` to see the distances (they go into BENCHMARKS.md).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image

from scripts.hash_media import _to_rgb, hash_file, pillow_formats

REPO = Path(__file__).resolve().parents[2]
TESTDATA = (REPO / ".." / "shared" / "testdata").resolve()
EXPECTED_CSV = TESTDATA / "expected.csv"
DRIVER = Path(__file__).resolve().parent / "js" / "pdq_driver.mjs"
NODE = shutil.which("node")

MAX_DISTANCE = 4
MAX_QUALITY_DIFF = 2

pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed: pdq.js (the page's hasher) can't be run"
)


@dataclass(frozen=True)
class Compared:
    name: str
    distance: int
    quality_diff: int
    python: tuple[str, int]
    js: tuple[str, int]


def _image_paths() -> list[Path]:
    if not EXPECTED_CSV.is_file():
        return []
    with EXPECTED_CSV.open(newline="") as f:
        return [TESTDATA / row["path"] for row in csv.DictReader(f) if row["kind"] == "image"]


def _rgba(rgb: np.ndarray) -> bytes:
    height, width, _ = rgb.shape
    opaque = np.full((height, width, 1), 255, dtype=np.uint8)
    return np.concatenate([rgb, opaque], axis=2).tobytes()


def _pdqhash_hex(rgb: np.ndarray) -> tuple[str, int]:
    vec, quality = pdqhash.compute(rgb)
    return np.packbits(vec.astype(np.uint8)).tobytes().hex(), int(quality)


def _run_js(
    tmp_path: Path, images: dict[str, np.ndarray], unaligned: Collection[str] = ()
) -> dict[str, tuple[str, int]]:
    manifest = []
    for i, (name, rgb) in enumerate(images.items()):
        raw = tmp_path / f"{i}.rgba"
        raw.write_bytes(_rgba(rgb))
        height, width, _ = rgb.shape
        manifest.append(
            {
                "name": name,
                "width": width,
                "height": height,
                "rgba": str(raw),
                "unaligned": name in unaligned,
            }
        )
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(DRIVER), str(tmp_path / "manifest.json")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    return {r["name"]: (r["hash"], r["quality"]) for r in results}


def _compare(python: dict[str, tuple[str, int]], js: dict[str, tuple[str, int]]) -> list[Compared]:
    assert js.keys() == python.keys()
    out = []
    for name, (py_hash, py_quality) in python.items():
        js_hash, js_quality = js[name]
        assert len(js_hash) == 64 and js_hash == js_hash.lower(), js_hash
        out.append(
            Compared(
                name=name,
                distance=(int(py_hash, 16) ^ int(js_hash, 16)).bit_count(),
                quality_diff=abs(py_quality - js_quality),
                python=(py_hash, py_quality),
                js=(js_hash, js_quality),
            )
        )
    return out


def _report(title: str, compared: list[Compared], capsys: pytest.CaptureFixture[str]) -> None:
    distances = [c.distance for c in compared]
    with capsys.disabled():
        print(
            f"\n{title}: {len(compared)} images, Hamming distance to pdqhash "
            f"max {max(distances)} mean {sum(distances) / len(distances):.2f}, "
            f"quality difference max {max(c.quality_diff for c in compared)}"
        )


def _assert_close(compared: list[Compared]) -> None:
    far = [c for c in compared if c.distance > MAX_DISTANCE or c.quality_diff > MAX_QUALITY_DIFF]
    assert not far, "\n".join(f"{c.name}: python {c.python} js {c.js}" for c in far)


def test_testdata_images_hash_like_the_python_tool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _image_paths()
    if not paths:
        pytest.skip(f"no test images: {EXPECTED_CSV} is missing")
    images: dict[str, np.ndarray] = {}
    python: dict[str, tuple[str, int]] = {}
    for path in paths:
        name = path.relative_to(TESTDATA).as_posix()
        with Image.open(path, formats=pillow_formats()) as im:
            images[name] = np.asarray(_to_rgb(im))
        result = hash_file(path)  # the tool's own answer, pdqhash under it
        assert result.quality is not None
        python[name] = (result.value, result.quality)

    compared = _compare(python, _run_js(tmp_path, images))
    _report("testdata", compared, capsys)
    _assert_close(compared)


def test_awkward_shapes_hash_like_pdqhash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Shapes around the filter's corner cases: windows of 1 and 2, odd and
    # even windows, long thin strips, sides just under and over 64 and 128.
    shapes = [(5, 5), (6, 200), (200, 6), (63, 65), (64, 64), (127, 129), (130, 257),
              (1000, 17), (17, 1000), (301, 480), (799, 1201)]  # fmt: skip
    rng = np.random.default_rng(20261206)
    images: dict[str, np.ndarray] = {}
    for height, width in shapes:
        # Smooth gradients plus noise: like a photo, enough structure that
        # the hash is not decided by rounding alone.
        y, x = np.mgrid[0:height, 0:width]
        base = 127 + 100 * np.sin(x / (width / 7 + 1)) * np.cos(y / (height / 5 + 1))
        noise = rng.normal(0, 20, size=(height, width, 3))
        rgb = np.clip(base[..., None] + noise, 0, 255).astype(np.uint8)
        images[f"{height}x{width}"] = rgb
    python = {name: _pdqhash_hex(rgb) for name, rgb in images.items()}

    # Unaligned input takes the byte-by-byte path instead of 32-bit loads.
    compared = _compare(python, _run_js(tmp_path, images, unaligned={"301x480", "17x1000"}))
    _report("synthetic shapes", compared, capsys)
    _assert_close(compared)


def test_images_under_five_pixels_a_side_have_no_hash(tmp_path: Path) -> None:
    # As in the reference: an all-zero hash with quality 0 (the bank refuses it).
    images = {"4x100": np.zeros((4, 100, 3), np.uint8), "100x4": np.zeros((100, 4, 3), np.uint8)}
    js = _run_js(tmp_path, images)
    assert js == {name: ("0" * 64, 0) for name in images}
    assert {name: _pdqhash_hex(rgb) for name, rgb in images.items()} == js
