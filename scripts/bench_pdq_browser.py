#!/usr/bin/env python
"""Benchmark hashing on the victim's device: cases/static/cases/hash-worker.js
in headless Chromium, driven by Selenium.

1. One generated 12-megapixel JPEG (4000x3000), hashed through the worker as
   the page does it: decode (createImageBitmap), canvas, getImageData, PDQ.
   Target <= 1 s (aim 0.5 s). The first run (cold: the worker is new) is
   shown apart from the best of the others, and the main thread repeats the
   steps one by one to show where the time goes.
2. 20 typical phone photos (generated JPEGs, 3-4k pixels on the long side),
   all posted at once to one worker, as the page posts a batch. Target
   <= 15 s in total.
3. Every image and video in ../shared/testdata through the worker (the
   browser's own decoders): Hamming distance to expected.csv, and MD5s equal.

The page is served from a throwaway static server on 127.0.0.1 with a
Content-Security-Policy as strict as the real page's (no 'unsafe-eval', no
'unsafe-inline'), so the run also shows the worker needs neither.

    .venv/bin/python scripts/bench_pdq_browser.py
    .venv/bin/python scripts/bench_pdq_browser.py --photos 5 --repeat 2 --no-testdata

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian's `chromium` and
`chromium-driver` packages).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

REPO = Path(__file__).resolve().parent.parent
STATIC = REPO / "cases" / "static" / "cases"
TESTDATA = (REPO / ".." / "shared" / "testdata").resolve()
CHROMIUM = Path(os.environ.get("BENCH_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("BENCH_CHROMEDRIVER", "/usr/bin/chromedriver"))

CSP = (
    "default-src 'none'; script-src 'self'; worker-src 'self'; connect-src 'self'; "
    "img-src 'self' blob:; style-src 'self'; base-uri 'none'; form-action 'none'"
)

# Phone cameras' usual sizes (long side 3-4k): iPhone 12 MP, Android 12.5,
# 8 MP, 16:9 crops, and portrait ones.
PHONE_SIZES = [
    (4032, 3024), (3024, 4032), (4000, 3000), (4080, 3060), (3264, 2448),
    (2448, 3264), (4000, 2250), (3840, 2160), (3000, 4000), (4032, 2268),
]  # fmt: skip

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>pdq bench</title>
<script type="module" src="bench.js"></script></head>
<body>pdq bench</body></html>
"""

# The driver's side of the worker protocol documented in hash-worker.js.
BENCH_JS = """
const config = await (await fetch("config.json")).json();
const worker = new Worker("/static/cases/hash-worker.js", { type: "module" });
const pending = new Map();
let nextId = 0;
worker.addEventListener("message", ({ data }) => {
  const job = pending.get(data.id);
  if (data.type === "progress") { job.progress.push(data.fraction); return; }
  pending.delete(data.id);
  job.resolve({ ...data, ms: performance.now() - job.start, progress: job.progress });
});
function hash(file) {
  return new Promise((resolve) => {
    const id = nextId++;
    pending.set(id, { resolve, start: performance.now(), progress: [] });
    worker.postMessage({ id, file });
  });
}
async function load(url) {
  const blob = await (await fetch(url)).blob();
  return new File([blob], url.split("/").pop(), { type: blob.type });
}

const result = {};
try {
  const big = await load(config.big);
  result.big = [];
  for (let i = 0; i < config.repeat; i++) result.big.push(await hash(big));

  // The same steps on the main thread, timed one by one.
  const { pdqHash } = await import("/static/cases/pdq.js");
  const t0 = performance.now();
  const bitmap = await createImageBitmap(big, {
    imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none",
  });
  const t1 = performance.now();
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  const pixels = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  const t2 = performance.now();
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const s = performance.now();
    pdqHash(pixels);
    best = Math.min(best, performance.now() - s);
  }
  result.steps = { decode: t1 - t0, canvas: t2 - t1, pdq: best };
  bitmap.close();

  const photos = await Promise.all(config.photos.map(load));
  const start = performance.now();
  result.photos = await Promise.all(photos.map(hash));
  result.photosTotal = performance.now() - start;

  result.testdata = [];
  for (const path of config.testdata) {
    result.testdata.push({ path, ...(await hash(await load("/testdata/" + path))) });
  }
} catch (err) {
  result.error = String(err && err.stack || err);
}
window.benchResult = result;
"""


class Handler(SimpleHTTPRequestHandler):
    """Serves /static/cases/ from the repository, /testdata/ from the shared
    test data and everything else from the bench folder, with the CSP."""

    bench_dir: Path

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0]
        for prefix, root in (("/static/cases/", STATIC), ("/testdata/", TESTDATA)):
            if path.startswith(prefix):
                target = (root / path[len(prefix) :]).resolve()
                return str(target) if target.is_relative_to(root) else str(root / "missing")
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_server(bench_dir: Path) -> Iterator[str]:
    handler = partial(Handler, directory=str(bench_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def photo_like(width: int, height: int, seed: int) -> Image.Image:
    """A JPEG-worthy picture: smooth shapes, texture and sensor noise, so the
    decoder has as much to do as with a real photo."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(height // 64 + 2, width // 64 + 2, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC))
    noise = rng.normal(0, 12, size=(height, width, 1)).astype(np.int16)
    return Image.fromarray(np.clip(base.astype(np.int16) + noise, 0, 255).astype(np.uint8))


def save_jpeg(image: Image.Image, path: Path) -> None:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    path.write_bytes(buf.getvalue())


def testdata_rows() -> list[dict[str, str]]:
    csv_path = TESTDATA / "expected.csv"
    if not csv_path.is_file():
        return []
    with csv_path.open(newline="") as f:
        return list(csv.DictReader(f))


def wait_for_chromium(timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if time.monotonic() > deadline:
            sys.exit(f"{CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium-driver)")
        print("waiting for chromium and chromedriver to be installed ...", file=sys.stderr)
        time.sleep(10)


def run_browser(url: str, profile: Path, timeout: float) -> dict[str, Any]:
    """Opens ``url`` in headless Chromium and returns what the page sets as
    ``window.benchResult``."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium must not look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = driver.execute_script("return window.benchResult || null")
            if result is not None:
                return dict(result)
            time.sleep(0.2)
        sys.exit(f"no result from the page within {timeout:.0f} s")
    finally:
        driver.quit()


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=20, help="phone photos in the batch")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the 12 MP image")
    parser.add_argument("--no-testdata", action="store_true", help="skip ../shared/testdata")
    parser.add_argument("--timeout", type=float, default=300, help="seconds for the page")
    args = parser.parse_args(argv)
    wait_for_chromium()

    with tempfile.TemporaryDirectory(prefix="bench-pdq-") as tmp:
        bench = Path(tmp) / "site"
        bench.mkdir()
        print("generating images ...", file=sys.stderr)
        save_jpeg(photo_like(4000, 3000, seed=1), bench / "big-12mp.jpg")
        photos = []
        for i in range(args.photos):
            w, h = PHONE_SIZES[i % len(PHONE_SIZES)]
            name = f"photo-{i:02d}-{w}x{h}.jpg"
            save_jpeg(photo_like(w, h, seed=100 + i), bench / name)
            photos.append(name)
        rows = [] if args.no_testdata else testdata_rows()
        (bench / "config.json").write_text(
            json.dumps(
                {
                    "big": "big-12mp.jpg",
                    "repeat": args.repeat,
                    "photos": photos,
                    "testdata": [r["path"] for r in rows],
                }
            )
        )
        (bench / "index.html").write_text(PAGE)
        (bench / "bench.js").write_text(BENCH_JS)
        megapixels = sum(
            Image.open(bench / p).size[0] * Image.open(bench / p).size[1] for p in photos
        )

        load_before = os.getloadavg()[0]
        with static_server(bench) as origin:
            result = run_browser(f"{origin}/index.html", Path(tmp) / "profile", args.timeout)
        result["load"] = (load_before, os.getloadavg()[0])

    if "error" in result:
        print(f"error in the page: {result['error']}", file=sys.stderr)
        return 1
    return report(result, rows, megapixels / 1e6, argv)


def report(
    result: dict[str, Any], rows: list[dict[str, str]], megapixels: float, argv: list[str] | None
) -> int:
    ok = True
    big = result["big"]
    for r in big:
        ok &= r["type"] == "done" and r["algorithm"] == "pdq"
    warm = [r["ms"] for r in big[1:]] or [big[0]["ms"]]
    steps = result["steps"]
    photos = result["photos"]
    ok &= all(p["type"] == "done" for p in photos)

    print("command:", shlex.join(["scripts/bench_pdq_browser.py", *(argv or sys.argv[1:])]))
    print(
        f"chromium: {CHROMIUM}; {os.cpu_count()} cores; load average (1 min) "
        f"{result['load'][0]:.1f} before, {result['load'][1]:.1f} after"
    )
    print("12 MP JPEG (4000x3000) through the worker, decode included:")
    print(f"  first run {big[0]['ms']:.0f} ms, best of the next {min(warm):.0f} ms")
    print(
        f"  main thread, step by step: decode {steps['decode']:.0f} ms, "
        f"canvas + getImageData {steps['canvas']:.0f} ms, pdqHash {steps['pdq']:.0f} ms"
    )
    print(f"{len(photos)} phone photos ({megapixels:.0f} MP in all), one worker:")
    total = result["photosTotal"] / 1000
    print(f"  total {total:.2f} s, {total / len(photos):.2f} s per photo")

    if rows:
        expected = {r["path"]: r for r in rows}
        distances = []
        quality_diffs = []
        md5_ok = 0
        md5_all = 0
        for t in result["testdata"]:
            row = expected[t["path"]]
            if t["type"] != "done":
                print(f"  {t['path']}: error {t.get('code')}")
                ok = False
            elif row["kind"] == "image":
                distances.append(distance(row["pdq_hex"], t["value"]))
                quality_diffs.append(abs(int(row["pdq_quality"]) - t["quality"]))
            else:
                md5_all += 1
                md5_ok += t["value"] == row["md5_hex"]
        if distances:
            print(
                f"testdata through Chromium's decoders: {len(distances)} images, Hamming "
                f"distance to expected.csv max {max(distances)} mean "
                f"{sum(distances) / len(distances):.2f}, quality difference max "
                f"{max(quality_diffs)}; videos: {md5_ok}/{md5_all} MD5s equal"
            )
        ok &= md5_ok == md5_all
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
