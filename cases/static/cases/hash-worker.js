// Module Web Worker that hashes the files the victim picks, off the page's
// main thread. Start it with `new Worker(url, {type: "module"})`.
//
// Main -> worker: {id, file}  (id: anything the page uses to match replies;
//                              file: a File)
// Worker -> main, for each request:
//   {id, type: "progress", fraction}                  0..1, any number of times
//   then exactly one of
//   {id, type: "done", algorithm: "pdq", value, quality}   value: 64 hex digits
//   {id, type: "done", algorithm: "md5", value}            value: 32 hex digits
//   {id, type: "error", code}   code: "unsupported" | "empty" | "unreadable"
//
// Files are hashed one at a time in the order they arrive, so a batch of
// large photos never has two decoded at once.

import { HashError, hashFile } from "./hash-file.js";

let queue = Promise.resolve();

self.addEventListener("message", (event) => {
  const { id, file } = event.data ?? {};
  queue = queue.then(() => handle(id, file));
});

async function handle(id, file) {
  try {
    if (!(file instanceof Blob)) throw new HashError("unreadable");
    const result = await hashFile(file, (fraction) => {
      self.postMessage({ id, type: "progress", fraction });
    });
    self.postMessage({ id, type: "done", ...result });
  } catch (err) {
    const code = err instanceof HashError ? err.code : "unsupported";
    self.postMessage({ id, type: "error", code });
  }
}
