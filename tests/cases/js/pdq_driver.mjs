// Hashes raw RGBA files with cases/static/cases/pdq.js, for tests/cases/test_pdq_js.py.
//
// Usage: node pdq_driver.mjs MANIFEST.json
// The manifest is a list of {"name", "width", "height", "rgba"} where "rgba" is
// the path of a file holding width * height * 4 bytes. Prints one JSON object
// per image: {"name", "hash", "quality", "ms"}.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

import { pdqHash } from "../../../cases/static/cases/pdq.js";

const manifest = JSON.parse(readFileSync(process.argv[2], "utf8"));
for (const item of manifest) {
  const data = new Uint8ClampedArray(readFileSync(item.rgba).buffer);
  const start = performance.now();
  const { hash, quality } = pdqHash({ width: item.width, height: item.height, data });
  const ms = performance.now() - start;
  process.stdout.write(JSON.stringify({ name: item.name, hash, quality, ms }) + "\n");
}
