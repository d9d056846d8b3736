// PDQ perceptual hash (256 bits) and its quality score, for images hashed in
// the victim's own browser. Written from Meta's published description of the
// algorithm ("The TMK+PDQF Video-Hashing Algorithm and the PDQ Image
// Similarity Algorithm", and ThreatExchange's pdq/README.md):
//
//   RGB -> luminance -> Jarosz tent filter (two box-filter passes along rows
//   and columns) -> decimate to 64x64 -> quality from its gradients ->
//   DCT, keeping frequencies 1..16 x 1..16 -> one bit per coefficient: is it
//   above the median?
//
// The reference does every step in 32-bit floats. Each step here rounds to
// float32 at the same places (typed-array stores and Math.fround), so for the
// same pixels the hash equals that of the Python `pdqhash` package that
// scripts/hash_media.py uses, not just comes close to it
// (tests/cases/test_pdq_js.py checks this on ../shared/testdata).
//
// No dependencies, nothing allocated per pixel, and beyond the caller's RGBA
// bytes only a few rows' worth of memory (see downsample): a 12-megapixel
// photo takes about 0.15 s of one core.

const fround = Math.fround;

const OUT = 64; // side of the downsampled image
const FREQS = 16; // DCT coefficients kept along each axis
const MIN_SIDE = 5; // below this the reference returns an all-zero hash, quality 0

// Rows 1..16 of the 64-point DCT-II basis (row 0, the mean, is skipped),
// scaled by sqrt(2/64), rounded to float32 as the reference stores them.
const DCT = (() => {
  const m = new Float32Array(FREQS * OUT);
  const scale = fround(Math.sqrt(2 / OUT));
  for (let i = 0; i < FREQS; i++) {
    for (let k = 0; k < OUT; k++) {
      m[i * OUT + k] = scale * Math.cos((Math.PI / 2 / OUT) * (i + 1) * (2 * k + 1));
    }
  }
  return m;
})();

/**
 * PDQ hash and quality of an image.
 *
 * @param {{width: number, height: number, data: ArrayLike<number>}} image
 *   RGBA bytes, row by row, as in `ImageData` (alpha is ignored, as when the
 *   Python tool converts to RGB).
 * @returns {{hash: string, quality: number}} `hash`: 64 lower-case hex
 *   digits, the most significant bit first in the same order as
 *   `np.packbits(pdqhash.compute(...)[0])`; `quality`: an integer 0..100.
 */
export function pdqHash(image) {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new TypeError("pdqHash: width and height must be positive integers");
  }
  if (!data || data.length < width * height * 4) {
    throw new TypeError("pdqHash: data must hold width * height RGBA bytes");
  }
  if (width < MIN_SIDE || height < MIN_SIDE) {
    return { hash: "0".repeat(64), quality: 0 };
  }

  const small = downsample(data, width, height);
  const quality = qualityOf(small);
  const coeffs = dct16(small);
  return { hash: bitsToHex(coeffs), quality };
}

// Luminance, tent-filtered and decimated to 64x64 (row-major Float32Array).
//
// The reference filters the whole image four times over (rows, columns,
// rows, columns), each pass into a full-size buffer. Here the first three
// passes run as one stream over the rows of the photo: rows are turned into
// luminance and box-filtered along themselves, then join the running column
// sums, and each finished row of the column pass is filtered along itself
// again, keeping only its 64 sampled columns. The column pass needs the rows
// of its window only, so memory stays at a few hundred kilobytes instead of
// twice the photo, and the data stays in the cache. Each value still goes
// through the same float32 operations in the same order.
//
// Rows go through the row filter four at a time: a running sum is a chain
// of dependent additions, and four independent chains keep the CPU busy
// where one would leave it waiting.
function downsample(rgba, width, height) {
  // Half of 1/64 of the side per pass, rounded up: two passes then reach
  // over one output pixel's whole footprint.
  const winX = Math.floor((width + 2 * OUT - 1) / (2 * OUT));
  const winY = Math.floor((height + 2 * OUT - 1) / (2 * OUT));
  const halfY = (winY + 2) >> 1;

  const rows = sampleIndexes(height);
  const cols = sampleIndexes(width);

  const slots = winY + BATCH; // rows of the window, plus a batch being added
  const luma = new Float32Array(BATCH * width);
  const ring = new Float32Array(slots * width); // rows after pass 1
  const sums = new Float32Array(width); // running column sums of pass 2
  const done = new Float32Array(BATCH * width); // rows after pass 2
  const filtered = new Float32Array(BATCH * width); // ... and pass 3
  const kept = new Float32Array(height * OUT); // their 64 sampled columns

  // One RGBA pixel per 32-bit load when the bytes allow it (little-endian:
  // red in the low byte).
  const pixels =
    LITTLE_ENDIAN && rgba.byteOffset % 4 === 0 && rgba.buffer instanceof ArrayBuffer
      ? new Uint32Array(rgba.buffer, rgba.byteOffset, width * height)
      : null;

  let pending = 0; // rows in `done` waiting for pass 3
  let nextRow = 0; // output row number of the first of them
  const flush = () => {
    boxRows(done, filtered, pending, width, winX);
    for (let k = 0; k < pending; k++) {
      const from = k * width;
      const to = (nextRow + k) * OUT;
      for (let j = 0; j < OUT; j++) kept[to + j] = filtered[from + cols[j]];
    }
    nextRow += pending;
    pending = 0;
  };

  let count = 0; // rows in the column window
  for (let y0 = 0; y0 < height; y0 += BATCH) {
    const n = Math.min(BATCH, height - y0);
    // Same weights and order of operations as pdqhash's numpy expression;
    // the store rounds to float32 like its `.astype("float32")`.
    for (let k = 0; k < n; k++) {
      const row = (y0 + k) * width;
      const out = k * width;
      if (pixels) {
        for (let x = 0; x < width; x++) {
          const v = pixels[row + x];
          luma[out + x] = (v & 255) * 0.299 + ((v >>> 8) & 255) * 0.587 + ((v >>> 16) & 255) * 0.114;
        }
      } else {
        for (let x = 0, q = row * 4; x < width; x++, q += 4) {
          luma[out + x] = rgba[q] * 0.299 + rgba[q + 1] * 0.587 + rgba[q + 2] * 0.114;
        }
      }
    }
    if (n === BATCH) {
      box4(
        luma, 0, width, 2 * width, 3 * width,
        ring, (y0 % slots) * width, ((y0 + 1) % slots) * width,
        ((y0 + 2) % slots) * width, ((y0 + 3) % slots) * width,
        width, winX,
      );
    } else {
      for (let k = 0; k < n; k++) {
        box1d(luma, k * width, 1, ring, ((y0 + k) % slots) * width, 1, width, winX);
      }
    }

    // Pass 2, one row at a time; once the window reaches `halfY` rows, each
    // step finishes a row (the window's sums over `count` rows).
    for (let y = y0; y < y0 + n; y++) {
      const add = (y % slots) * width;
      const out = pending * width;
      if (y < halfY - 1) {
        count++;
        for (let x = 0; x < width; x++) sums[x] += ring[add + x];
        continue;
      }
      if (y < winY) {
        count++;
        for (let x = 0; x < width; x++) {
          const v = fround(sums[x] + ring[add + x]);
          sums[x] = v;
          done[out + x] = v / count;
        }
      } else {
        const sub = ((y - winY) % slots) * width;
        for (let x = 0; x < width; x++) {
          const v = fround(fround(sums[x] + ring[add + x]) - ring[sub + x]);
          sums[x] = v;
          done[out + x] = v / count;
        }
      }
      if (++pending === BATCH) flush();
    }
  }
  // The window slides past the last row: subtract only.
  for (let y = height - winY; count > winY - halfY + 1; y++) {
    const sub = (y % slots) * width;
    const out = pending * width;
    count--;
    for (let x = 0; x < width; x++) {
      const v = fround(sums[x] - ring[sub + x]);
      sums[x] = v;
      done[out + x] = v / count;
    }
    if (++pending === BATCH) flush();
  }
  flush();

  // Last pass, down the 64 kept columns; then keep the 64 sampled rows.
  const out = new Float32Array(OUT * OUT);
  const column = new Float32Array(height);
  for (let j = 0; j < OUT; j++) {
    box1d(kept, j, OUT, column, 0, 1, height, winY);
    for (let i = 0; i < OUT; i++) {
      out[i * OUT + j] = column[rows[i]];
    }
  }
  return out;
}

// Box-filters `n` (at most BATCH) consecutive rows of `src` into `dst`.
function boxRows(src, dst, n, width, win) {
  if (n === BATCH) {
    box4(src, 0, width, 2 * width, 3 * width, dst, 0, width, 2 * width, 3 * width, width, win);
  } else {
    for (let k = 0; k < n; k++) box1d(src, k * width, 1, dst, k * width, 1, width, win);
  }
}

const BATCH = 4;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// The pixel each of the 64 output pixels takes along a side: the one under
// its centre.
function sampleIndexes(side) {
  const idx = new Int32Array(OUT);
  for (let i = 0; i < OUT; i++) {
    idx[i] = Math.floor(((i + 0.5) * side) / OUT);
  }
  return idx;
}

// One box-filter pass along a line of `len` values, read `srcStride` and
// written `dstStride` apart. Near the ends the window is cut short and the
// mean taken over what it covers; the window is centred like the reference's
// (for an even size, one more value after the centre than before). The
// running sum is a float32, updated in the reference's order, so rounding
// matches it.
function box1d(src, srcStart, srcStride, dst, dstStart, dstStride, len, win) {
  const half = (win + 2) >> 1;
  let sum = 0;
  let count = 0;
  let ri = srcStart;
  let li = srcStart;
  let oi = dstStart;
  for (let i = half - 1; i > 0; i--) {
    sum = fround(sum + src[ri]);
    count++;
    ri += srcStride;
  }
  for (let i = win - half + 1; i > 0; i--) {
    sum = fround(sum + src[ri]);
    count++;
    dst[oi] = sum / count;
    ri += srcStride;
    oi += dstStride;
  }
  for (let i = len - win; i > 0; i--) {
    sum = fround(fround(sum + src[ri]) - src[li]);
    dst[oi] = sum / count;
    li += srcStride;
    ri += srcStride;
    oi += dstStride;
  }
  for (let i = half - 1; i > 0; i--) {
    sum = fround(sum - src[li]);
    count--;
    dst[oi] = sum / count;
    li += srcStride;
    oi += dstStride;
  }
}

// box1d on four rows of `len` values at once (offsets s0..s3 in `src`, d0..d3
// in `dst`), interleaved.
function box4(src, s0, s1, s2, s3, dst, d0, d1, d2, d3, len, win) {
  const half = (win + 2) >> 1;
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  let count = 0;
  let r = 0; // next value to add
  let l = 0; // ... to subtract
  let o = 0; // ... to write
  for (; r < half - 1; r++) {
    a = fround(a + src[s0 + r]);
    b = fround(b + src[s1 + r]);
    c = fround(c + src[s2 + r]);
    d = fround(d + src[s3 + r]);
    count++;
  }
  for (; r < win; r++, o++) {
    a = fround(a + src[s0 + r]);
    b = fround(b + src[s1 + r]);
    c = fround(c + src[s2 + r]);
    d = fround(d + src[s3 + r]);
    count++;
    dst[d0 + o] = a / count;
    dst[d1 + o] = b / count;
    dst[d2 + o] = c / count;
    dst[d3 + o] = d / count;
  }
  for (; r < len; r++, l++, o++) {
    a = fround(fround(a + src[s0 + r]) - src[s0 + l]);
    b = fround(fround(b + src[s1 + r]) - src[s1 + l]);
    c = fround(fround(c + src[s2 + r]) - src[s2 + l]);
    d = fround(fround(d + src[s3 + r]) - src[s3 + l]);
    dst[d0 + o] = a / count;
    dst[d1 + o] = b / count;
    dst[d2 + o] = c / count;
    dst[d3 + o] = d / count;
  }
  for (; o < len; l++, o++) {
    a = fround(a - src[s0 + l]);
    b = fround(b - src[s1 + l]);
    c = fround(c - src[s2 + l]);
    d = fround(d - src[s3 + l]);
    count--;
    dst[d0 + o] = a / count;
    dst[d1 + o] = b / count;
    dst[d2 + o] = c / count;
    dst[d3 + o] = d / count;
  }
}

// Sum of the clearly visible steps between neighbouring pixels of the 64x64
// image, in percent of full scale (each truncated to an integer first, so
// that many tiny steps count for nothing), scaled so that 100 means "enough
// detail to match reliably".
function qualityOf(px) {
  let gradients = 0;
  for (let i = 0; i < OUT - 1; i++) {
    for (let j = 0; j < OUT; j++) {
      gradients += Math.abs(step(px[i * OUT + j], px[(i + 1) * OUT + j]));
    }
  }
  for (let i = 0; i < OUT; i++) {
    for (let j = 0; j < OUT - 1; j++) {
      gradients += Math.abs(step(px[i * OUT + j], px[i * OUT + j + 1]));
    }
  }
  return Math.min(100, Math.floor(gradients / 90));
}

function step(u, v) {
  return Math.trunc(fround(fround(fround(u - v) * 100) / 255));
}

// DCT * px * DCT^T, 16x16, summing in float32 in the reference's order.
function dct16(px) {
  const t = new Float32Array(FREQS * OUT); // DCT * px
  for (let i = 0; i < FREQS; i++) {
    for (let j = 0; j < OUT; j++) {
      let s = 0;
      for (let k = 0; k < OUT; k++) {
        s = fround(s + fround(DCT[i * OUT + k] * px[k * OUT + j]));
      }
      t[i * OUT + j] = s;
    }
  }
  const out = new Float32Array(FREQS * FREQS);
  for (let i = 0; i < FREQS; i++) {
    for (let j = 0; j < FREQS; j++) {
      let s = 0;
      for (let k = 0; k < OUT; k++) {
        s = fround(s + fround(t[i * OUT + k] * DCT[j * OUT + k]));
      }
      out[i * FREQS + j] = s;
    }
  }
  return out;
}

// Bit k (k = 16 * row + column of the coefficient) is set when that
// coefficient is above the median, taken as the 128th smallest of the 256
// (so exactly 128 bits are set unless values tie). The reference prints bit
// 255 first and bit 0 last, four bits per hex digit.
function bitsToHex(coeffs) {
  const median = Float32Array.from(coeffs).sort()[127];
  let hex = "";
  for (let k = 255; k >= 0; k -= 4) {
    let nibble = 0;
    for (let b = 0; b < 4; b++) {
      nibble = (nibble << 1) | (coeffs[k - b] > median ? 1 : 0);
    }
    hex += nibble.toString(16);
  }
  return hex;
}
