// Hashing one file the victim picked, on their device: PDQ (+ quality) for
// images, MD5 of the bytes for videos, as scripts/hash_media.py does. Used by
// hash-worker.js; kept apart from the worker's messaging so that Node can
// run it in tests (tests/cases/test_md5_js.py).

import { pdqHash } from "./pdq.js";
// A UMD script, not an ES module: imported for its side effect, it sets
// globalThis.SparkMD5 in a browser or worker. (Node loads it as CommonJS;
// the tests set the global themselves.)
import "./vendor/spark-md5.min.js";

// Videos are read this many bytes at a time, never whole.
export const CHUNK_SIZE = 4 * 1024 * 1024;

// The tool's accepted extensions (scripts/hash_media.py), split by what a
// browser can do with them.
const IMAGE_EXTENSIONS = new Set(["jpeg", "jpg", "png", "gif", "ico", "bmp"]);
const UNDECODABLE_EXTENSIONS = new Set(["psd", "tiff", "tif", "xcf", "tga", "miff", "dcm", "xpm", "pcx"]);
const UNDECODABLE_TYPES = new Set(["image/tiff", "image/vnd.adobe.photoshop", "image/x-xcf"]);
const VIDEO_EXTENSIONS = new Set(["mp4", "mov", "avi", "qt", "wmv"]);

// EXIF orientation: "from-image" hashes the photo the way it is shown, as a
// platform that stores it upright would. scripts/hash_media.py hashes the
// pixels as stored ("none" here) instead, so for a photo whose EXIF says
// "rotated" the two give different hashes.
const ORIENTATION = "from-image";

/** A file that can't be hashed; `code` is what the page shows a message for. */
export class HashError extends Error {
  constructor(code, cause) {
    super(code, cause === undefined ? undefined : { cause });
    this.name = "HashError";
    this.code = code;
  }
}

/**
 * What to do with a file: "pdq", "md5", or null (not hashable here).
 * @param {{name?: string, type?: string}} file
 */
export function algorithmFor(file) {
  const name = String(file.name ?? "");
  const dot = name.lastIndexOf(".");
  const ext = dot >= 0 ? name.slice(dot + 1).toLowerCase() : "";
  const type = String(file.type ?? "").toLowerCase();
  if (UNDECODABLE_EXTENSIONS.has(ext) || UNDECODABLE_TYPES.has(type)) return null;
  if (VIDEO_EXTENSIONS.has(ext) || type.startsWith("video/")) return "md5";
  if (IMAGE_EXTENSIONS.has(ext) || type.startsWith("image/")) return "pdq";
  return null;
}

/**
 * Hashes a File (or Blob with a name).
 * @param {File} file
 * @param {(fraction: number) => void} onProgress called with 0..1 as work is done
 * @param {{chunkSize?: number}} options bytes read at a time (tests vary it)
 * @returns {Promise<{algorithm: "pdq", value: string, quality: number} |
 *                   {algorithm: "md5", value: string}>}
 * @throws {HashError} code "unsupported" (a format this browser can't
 *   decode, or a damaged file), "empty" (0 bytes) or "unreadable" (the
 *   file could not be read, e.g. it was moved or deleted after being picked).
 */
export async function hashFile(file, onProgress = () => {}, { chunkSize = CHUNK_SIZE } = {}) {
  const algorithm = algorithmFor(file);
  if (algorithm === null) throw new HashError("unsupported");
  if (file.size === 0) throw new HashError("empty");
  if (algorithm === "md5") {
    return { algorithm, value: await md5(file, onProgress, chunkSize) };
  }
  const { hash, quality } = await pdqOfImage(file, onProgress);
  return { algorithm, value: hash, quality };
}

async function md5(file, onProgress, chunkSize) {
  const SparkMD5 = globalThis.SparkMD5;
  const digest = new SparkMD5.ArrayBuffer();
  const size = file.size;
  const read = (start) =>
    file
      .slice(start, Math.min(start + chunkSize, size))
      .arrayBuffer()
      .catch((err) => {
        throw new HashError("unreadable", err);
      });
  onProgress(0);
  // The next piece is read while this one is hashed: two pieces in memory.
  let next = read(0);
  for (let start = 0; start < size; start += chunkSize) {
    const piece = await next;
    if (start + chunkSize < size) next = read(start + chunkSize);
    digest.append(piece);
    onProgress(Math.min(start + chunkSize, size) / size);
  }
  return digest.end();
}

async function pdqOfImage(file, onProgress) {
  onProgress(0);
  let bitmap;
  try {
    // The stored colour values, as Pillow reads them: no colour-profile
    // conversion, no premultiplied alpha.
    bitmap = await createImageBitmap(file, {
      imageOrientation: ORIENTATION,
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
    });
  } catch (err) {
    // A read failure surfaces here too, but the browser doesn't say which.
    throw new HashError("unsupported", err);
  }
  try {
    onProgress(0.5);
    const { width, height } = bitmap;
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext("2d", { willReadFrequently: true });
    if (!context) throw new HashError("unsupported");
    context.drawImage(bitmap, 0, 0);
    const pixels = context.getImageData(0, 0, width, height);
    canvas.width = canvas.height = 0; // let its pixels go before hashing
    const result = pdqHash(pixels);
    onProgress(1);
    return result;
  } catch (err) {
    // Too many pixels for a canvas on this device, mostly.
    throw err instanceof HashError ? err : new HashError("unsupported", err);
  } finally {
    bitmap.close();
  }
}
