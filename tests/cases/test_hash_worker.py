"""hash-worker.js in headless Chromium: its message protocol, and its hashes.

The worker is loaded as the page loads it (a module worker, same origin,
behind a Content-Security-Policy without 'unsafe-eval' or 'unsafe-inline'),
and every file of ../shared/testdata is posted to it at once, with a few
files it must refuse. Images are decoded by Chromium itself here, so this
also checks that the browser's decoders give the Python tool's hashes.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.bench_pdq_browser import CHROMEDRIVER, CHROMIUM, PAGE, run_browser, static_server

REPO = Path(__file__).resolve().parents[2]
TESTDATA = (REPO / ".." / "shared" / "testdata").resolve()
EXPECTED_CSV = TESTDATA / "expected.csv"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason=f"{CHROMIUM} and {CHROMEDRIVER} are needed (Debian: apt-get install chromium-driver)",
)

# Posts every file of config.json to the worker at once and records every
# message, until each request has had its answer (and a little longer, to
# catch any message after it).
DRIVER_JS = """
const config = await (await fetch("config.json")).json();
const worker = new Worker("/static/cases/hash-worker.js", { type: "module" });
const messages = {};
let open = config.files.length;
const answered = new Promise((resolve) => {
  worker.addEventListener("message", ({ data }) => {
    (messages[data.id] ??= []).push(data);
    if (data.type !== "progress" && --open === 0) resolve();
  });
});
const files = await Promise.all(config.files.map(async ({ url, name }) => {
  const blob = await (await fetch(url)).blob();
  return new File([blob], name, { type: blob.type });
}));
files.forEach((file, i) => worker.postMessage({ id: "f" + i, file }));
await answered;
await new Promise((resolve) => setTimeout(resolve, 300));
window.benchResult = { messages };
"""


def _rows() -> list[dict[str, str]]:
    if not EXPECTED_CSV.is_file():
        return []
    with EXPECTED_CSV.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def answers() -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Messages from the worker, by the name of the file posted."""
    rows = _rows()
    with tempfile.TemporaryDirectory(prefix="hash-worker-") as tmp:
        site = Path(tmp) / "site"
        site.mkdir()
        files = [{"url": f"/testdata/{r['path']}", "name": r["path"]} for r in rows]
        refused = {
            "layers.psd": b"8BPS\x00\x01" + bytes(64),
            "scan.TIF": b"II*\x00" + bytes(64),
            "broken.jpg": b"\xff\xd8\xff\xe0 this is not a JPEG",
            "notes.txt": b"hello",
            "empty.mp4": b"",
        }
        for name, content in refused.items():
            (site / name).write_bytes(content)
            files.append({"url": f"/{name}", "name": name})
        (site / "config.json").write_text(json.dumps({"files": files}))
        (site / "index.html").write_text(PAGE)
        (site / "bench.js").write_text(DRIVER_JS)
        with static_server(site) as origin:
            result = run_browser(f"{origin}/index.html", Path(tmp) / "profile", timeout=240)
    assert "error" not in result, result.get("error")
    by_id = result["messages"]
    yield {f["name"]: by_id.get(f"f{i}", []) for i, f in enumerate(files)}


def _answer(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The one final message, after progress only, with fractions rising 0..1."""
    *progress, last = messages
    assert all(m["type"] == "progress" for m in progress)
    assert last["type"] in ("done", "error")
    fractions = [m["fraction"] for m in progress]
    assert fractions == sorted(fractions)
    assert all(0 <= f <= 1 for f in fractions)
    return last


def test_each_request_gets_progress_then_exactly_one_answer(
    answers: dict[str, list[dict[str, Any]]],
) -> None:
    for name, messages in answers.items():
        assert messages, f"no answer for {name}"
        last = _answer(messages)
        if last["type"] == "done":
            assert messages[-2]["fraction"] == 1, name


def test_images_hash_like_the_python_tool(answers: dict[str, list[dict[str, Any]]]) -> None:
    rows = [r for r in _rows() if r["kind"] == "image"]
    if not rows:
        pytest.skip(f"no test images: {EXPECTED_CSV} is missing")
    for row in rows:
        done = _answer(answers[row["path"]])
        assert done.keys() == {"id", "type", "algorithm", "value", "quality"}
        assert done["algorithm"] == "pdq"
        # Chromium's decoders and Pillow's gave identical pixels for every
        # test image when this was written; a later libjpeg may round a few
        # differently, hence the same margin as for pdq.js itself.
        distance = (int(done["value"], 16) ^ int(row["pdq_hex"], 16)).bit_count()
        assert distance <= 4, row["path"]
        assert abs(done["quality"] - int(row["pdq_quality"])) <= 2, row["path"]


def test_videos_md5_like_the_python_tool(answers: dict[str, list[dict[str, Any]]]) -> None:
    rows = [r for r in _rows() if r["kind"] == "video"]
    if not rows:
        pytest.skip(f"no test videos: {EXPECTED_CSV} is missing")
    for row in rows:
        done = _answer(answers[row["path"]])
        assert done.keys() == {"id", "type", "algorithm", "value"}
        assert (done["algorithm"], done["value"]) == ("md5", row["md5_hex"])


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("layers.psd", "unsupported"),
        ("scan.TIF", "unsupported"),
        ("broken.jpg", "unsupported"),
        ("notes.txt", "unsupported"),
        ("empty.mp4", "empty"),
    ],
)
def test_files_it_cannot_hash_get_an_error_code(
    answers: dict[str, list[dict[str, Any]]], name: str, code: str
) -> None:
    error = _answer(answers[name])
    assert error.keys() == {"id", "type", "code"}
    assert (error["type"], error["code"]) == ("error", code)
