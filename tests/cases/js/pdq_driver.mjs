// Hashes raw RGBA files with cases/static/cases/pdq.js, for tests/cases/test_pdq_js.py.
//
// Usage: node pdq_driver.mjs MANIFEST.json
// The manifest is a list of {"name", "width", "height", "rgba", "unaligned"}:
// "rgba" is the path of a file holding width * height * 4 bytes; with
// "unaligned" the bytes are handed over at an odd offset in their buffer, as a
// Uint8Array view can be. Prints one JSON object per image:
// {"name", "hash", "quality", "ms"}.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

import { pdqHash } from "../../../cases/static/cases/pdq.js";

const manifest = JSON.parse(readFileSync(process.argv[2], "utf8"));
for (const item of manifest) {
  const bytes = readFileSync(item.rgba);
  let data;
  if (item.unaligned) {
    const buffer = new ArrayBuffer(bytes.length + 1);
    data = new Uint8Array(buffer, 1, bytes.length);
    data.set(bytes);
  } else {
    data = new Uint8ClampedArray(bytes.length);
    data.set(bytes);
  }
  const start = performance.now();
  const { hash, quality } = pdqHash({ width: item.width, height: item.height, data });
  const ms = performance.now() - start;
  process.stdout.write(JSON.stringify({ name: item.name, hash, quality, ms }) + "\n");
}
