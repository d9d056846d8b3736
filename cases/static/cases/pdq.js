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
// No dependencies, no allocation per pixel: a 12-megapixel photo costs two
// Float32Arrays of its size and a few linear passes over them.

const fround = Math.fround;

const OUT = 64; // side of the downsampled image
const FREQS = 16; // DCT coefficients kept along each axis
const MIN_SIDE = 5; // below this the reference returns an all-zero hash, quality 0
const PASSES = 2; // two box passes per axis make the tent filter

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
function downsample(rgba, width, height) {
  const n = width * height;
  const a = new Float32Array(n);
  const b = new Float32Array(n);

  // Same weights, same order of operations, as pdqhash's numpy expression;
  // the store rounds to float32 like its `.astype("float32")`.
  for (let p = 0, q = 0; p < n; p++, q += 4) {
    a[p] = rgba[q] * 0.299 + rgba[q + 1] * 0.587 + rgba[q + 2] * 0.114;
  }

  // Half of 1/64 of the side per pass, rounded up: two passes then reach
  // over one output pixel's whole footprint.
  const winX = Math.floor((width + 2 * OUT - 1) / (2 * OUT));
  const winY = Math.floor((height + 2 * OUT - 1) / (2 * OUT));

  const rows = sampleIndexes(height);
  const cols = sampleIndexes(width);

  for (let pass = 0; pass < PASSES; pass++) {
    for (let r = 0; r < height; r++) {
      box1d(a, r * width, 1, b, r * width, 1, width, winX);
    }
    if (pass < PASSES - 1) {
      boxColumns(b, a, width, height, winY);
    }
  }

  // Last column pass: only the 64 sampled columns are ever read, so filter
  // just those (the arithmetic per column is the same as filtering them all).
  const out = new Float32Array(OUT * OUT);
  const column = new Float32Array(height);
  for (let j = 0; j < OUT; j++) {
    box1d(b, cols[j], width, column, 0, 1, height, winY);
    for (let i = 0; i < OUT; i++) {
      out[i * OUT + j] = column[rows[i]];
    }
  }
  return out;
}

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
// written `dstStride` apart. Near the
// ends the window is cut short and the mean taken over what it covers; the
// window is centred like the reference's (for an even size, one more value
// after the centre than before). The running sum is a float32, updated in the
// reference's order, so rounding matches it.
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

// box1d down every column at once, sweeping the rows in order: the same sums
// as one column at a time, but reading memory sequentially (a column walk over
// a big photo misses the cache on every pixel).
function boxColumns(src, dst, width, height, win) {
  const half = (win + 2) >> 1;
  const sums = new Float32Array(width);
  let count = 0;
  let ri = 0; // first index of the row being added
  let li = 0; // ... being subtracted
  let oi = 0; // ... being written
  for (let i = half - 1; i > 0; i--) {
    for (let j = 0; j < width; j++) sums[j] += src[ri + j];
    count++;
    ri += width;
  }
  for (let i = win - half + 1; i > 0; i--) {
    count++;
    for (let j = 0; j < width; j++) {
      const s = fround(sums[j] + src[ri + j]);
      sums[j] = s;
      dst[oi + j] = s / count;
    }
    ri += width;
    oi += width;
  }
  for (let i = height - win; i > 0; i--) {
    for (let j = 0; j < width; j++) {
      const s = fround(fround(sums[j] + src[ri + j]) - src[li + j]);
      sums[j] = s;
      dst[oi + j] = s / count;
    }
    li += width;
    ri += width;
    oi += width;
  }
  for (let i = half - 1; i > 0; i--) {
    count--;
    for (let j = 0; j < width; j++) {
      const s = fround(sums[j] - src[li + j]);
      sums[j] = s;
      dst[oi + j] = s / count;
    }
    li += width;
    oi += width;
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
