/*
 * COCO run-length encoding (RLE) of binary masks: the one codec of the pages, a port of
 * pycocotools' maskApi.c (rleToString, rleFrString, rleArea, rleToBbox).
 *
 * An RLE is {size: [H, W], counts}. `counts` lists run lengths over the pixels in column-major
 * order, starting with a (possibly empty) background run; it is either an array (COCO's
 * "uncompressed" RLE) or a string (the "compressed" form the server stores and sends).
 * Masks on the page are row-major Uint8Arrays of H*W 0/1 values, the layout of canvas ImageData.
 */

/**
 * Run lengths of a compressed COCO RLE string.
 * Each number is a little-endian base-32 varint written as chars from '0' (48): 0x20 means "more
 * chunks follow", 0x10 in the last chunk is the sign. From the fourth run on (index > 2), a number
 * is stored as the difference to the run two places back.
 * @param {string} text
 * @returns {number[]}
 */
export function decodeCounts(text) {
  const counts = [];
  let pos = 0;
  while (pos < text.length) {
    let value = 0;
    let scale = 1;
    let more = true;
    while (more) {
      if (pos >= text.length) throw new Error("truncated RLE counts string");
      const c = text.charCodeAt(pos) - 48;
      value += (c & 0x1f) * scale;
      scale *= 32;
      more = (c & 0x20) !== 0;
      pos += 1;
      if (!more && (c & 0x10) !== 0) value -= scale; // sign-extend
    }
    if (counts.length > 2) value += counts[counts.length - 2];
    counts.push(value);
  }
  return counts;
}

/**
 * The compressed COCO string of uncompressed counts (inverse of decodeCounts; the same string as
 * pycocotools' `mask.encode(...)["counts"]` for the same runs).
 * Arithmetic instead of bit operators keeps counts above 2**31 exact.
 * @param {ArrayLike<number>} counts
 * @returns {string}
 */
export function encodeCounts(counts) {
  let text = "";
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i];
    if (i > 2) x -= counts[i - 2];
    let more = true;
    while (more) {
      let c = ((x % 32) + 32) % 32; // low five bits, also for negative x
      x = Math.floor(x / 32); // arithmetic shift right by 5
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      text += String.fromCharCode(c + 48);
    }
  }
  return text;
}

/**
 * The uncompressed counts of an RLE, whichever form it carries.
 * @param {{size: number[], counts: string | number[]}} rle
 * @returns {number[]}
 */
export function countsOf(rle) {
  return typeof rle.counts === "string" ? decodeCounts(rle.counts) : Array.from(rle.counts);
}

/**
 * Decode an RLE into a row-major Uint8Array of H*W 0/1 values.
 * Runs past the end of the image are ignored (the server validates sizes; a page must not crash).
 * @param {{size: number[], counts: string | number[]}} rle
 * @returns {Uint8Array}
 */
export function rleToMask(rle) {
  const [height, width] = rle.size;
  const total = height * width;
  const mask = new Uint8Array(total);
  let index = 0; // column-major position of the next run
  let on = false;
  for (const run of countsOf(rle)) {
    if (on) {
      const end = Math.min(total, index + run);
      let col = Math.floor(index / height);
      let row = index - col * height;
      for (let k = index; k < end; k++) {
        mask[row * width + col] = 1;
        row += 1;
        if (row === height) {
          row = 0;
          col += 1;
        }
      }
    }
    index += run;
    on = !on;
  }
  return mask;
}

/**
 * Uncompressed COCO counts (column-major runs, background first) of a row-major mask.
 * @param {ArrayLike<number>} mask H*W values, non-zero = foreground
 * @param {number} height
 * @param {number} width
 * @returns {number[]}
 */
export function maskToCounts(mask, height, width) {
  const counts = [];
  let current = 0;
  let run = 0;
  for (let col = 0; col < width; col++) {
    for (let row = 0; row < height; row++) {
      const v = mask[row * width + col] ? 1 : 0;
      if (v !== current) {
        counts.push(run);
        current = v;
        run = 0;
      }
      run += 1;
    }
  }
  counts.push(run);
  return counts;
}

/**
 * Compressed COCO RLE of a row-major mask: the form the server stores.
 * @param {ArrayLike<number>} mask
 * @param {number} height
 * @param {number} width
 * @returns {{size: number[], counts: string}}
 */
export function maskToRle(mask, height, width) {
  return { size: [height, width], counts: encodeCounts(maskToCounts(mask, height, width)) };
}

/**
 * Foreground pixel count of an RLE, without decoding it.
 * @param {{size: number[], counts: string | number[]}} rle
 * @returns {number}
 */
export function rleArea(rle) {
  const counts = countsOf(rle);
  let area = 0;
  for (let i = 1; i < counts.length; i += 2) area += counts[i];
  return area;
}

/**
 * Foreground pixel count of a row-major mask.
 * @param {ArrayLike<number>} mask
 * @returns {number}
 */
export function maskArea(mask) {
  let area = 0;
  for (let k = 0; k < mask.length; k++) if (mask[k]) area += 1;
  return area;
}

/**
 * COCO box [x, y, w, h] of the foreground, [0, 0, 0, 0] when empty; pycocotools' rleToBbox,
 * including its rule that a run crossing a column boundary spans the full height.
 * @param {{size: number[], counts: string | number[]}} rle
 * @returns {number[]}
 */
export function rleBbox(rle) {
  const [height, width] = rle.size;
  const counts = countsOf(rle);
  const m = Math.floor(counts.length / 2) * 2; // a trailing background run adds nothing
  if (m === 0 || height === 0) return [0, 0, 0, 0];
  let xs = width;
  let ys = height;
  let xe = 0;
  let ye = 0;
  let cc = 0;
  let xp = 0;
  for (let j = 0; j < m; j++) {
    cc += counts[j];
    const t = cc - (j % 2); // first pixel of a foreground run, or the last one
    const y = t % height;
    const x = (t - y) / height;
    if (j % 2 === 0) xp = x;
    else if (xp < x) {
      ys = 0;
      ye = height - 1;
    }
    xs = Math.min(xs, x);
    xe = Math.max(xe, x);
    ys = Math.min(ys, y);
    ye = Math.max(ye, y);
  }
  return [xs, ys, xe - xs + 1, ye - ys + 1];
}
