// MD5s files with cases/static/cases/hash-file.js (the worker's code), for
// tests/cases/test_md5_js.py.
//
// Usage: node md5_driver.mjs CHUNK_SIZE PATH...
// Each file is handed over as a File backed by the file on disk, as the page's
// file picker gives one. Prints one JSON object per file:
// {"path", "algorithm", "value", "progress": [fractions...]} or {"path", "error"}.
import { openAsBlob } from "node:fs";
import { createRequire } from "node:module";
import { basename } from "node:path";

// In a browser the vendored UMD script sets the global when imported; Node
// loads it as CommonJS, so set the global from its exports.
const require = createRequire(import.meta.url);
globalThis.SparkMD5 = require("../../../cases/static/cases/vendor/spark-md5.min.js");
const { hashFile } = await import("../../../cases/static/cases/hash-file.js");

const chunkSize = Number(process.argv[2]);
for (const path of process.argv.slice(3)) {
  const file = new File([await openAsBlob(path)], basename(path));
  const progress = [];
  try {
    const result = await hashFile(file, (f) => progress.push(f), { chunkSize });
    process.stdout.write(JSON.stringify({ path, ...result, progress }) + "\n");
  } catch (err) {
    process.stdout.write(JSON.stringify({ path, error: err.code ?? String(err) }) + "\n");
  }
}
