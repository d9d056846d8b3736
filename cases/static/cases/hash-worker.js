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
// Two files are worked on at a time: the browser decodes the next photo on
// its own threads while this one hashes the current one. More would only
// hold more decoded photos in memory. Answers can therefore come in another
// order than the requests: match them by id.

import { HashError, hashFile } from "./hash-file.js";

const AT_ONCE = 2;
const waiting = [];
let running = 0;

self.addEventListener("message", (event) => {
  waiting.push(event.data ?? {});
  next();
});

function next() {
  while (running < AT_ONCE && waiting.length > 0) {
    const { id, file } = waiting.shift();
    running++;
    handle(id, file).finally(() => {
      running--;
      next();
    });
  }
}

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
