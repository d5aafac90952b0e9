// The pages' COCO RLE codec (frontend/static/js/lib/rle.js) against masks encoded by pycocotools
// (fixtures/rle_cases.json, written by make_rle_fixtures.py).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import test from "node:test";

import {
  countsOf,
  decodeCounts,
  encodeCounts,
  maskArea,
  maskToCounts,
  maskToRle,
  rleArea,
  rleBbox,
  rleToMask,
} from "../../frontend/static/js/lib/rle.js";

const { cases } = JSON.parse(
  readFileSync(new URL("./fixtures/rle_cases.json", import.meta.url), "utf8"),
);

/** The reference decoder: expand column-major runs one pixel at a time, into row-major order. */
function naiveMask(size, counts) {
  const [height, width] = size;
  const mask = new Uint8Array(height * width);
  let index = 0;
  counts.forEach((run, n) => {
    for (let k = 0; k < run; k++, index++) {
      if (n % 2 === 1) mask[(index % height) * width + Math.floor(index / height)] = 1;
    }
  });
  return mask;
}

test("the fixtures cover the cases the codec must handle", () => {
  assert.ok(cases.length >= 12);
  const names = cases.map((c) => c.name);
  for (const part of ["empty", "full", "1x1", "single_pixel", "noise", "7x13", "480x854"]) {
    assert.ok(names.some((name) => name.includes(part)), `no case named like ${part}`);
  }
});

for (const c of cases) {
  test(`${c.name}: decodes pycocotools' compressed string`, () => {
    assert.deepEqual(decodeCounts(c.counts), c.uncompressed);
    const expected = naiveMask(c.size, c.uncompressed);
    assert.deepEqual(rleToMask({ size: c.size, counts: c.counts }), expected);
    assert.deepEqual(rleToMask({ size: c.size, counts: c.uncompressed }), expected);
  });

  test(`${c.name}: encodes to pycocotools' counts and string`, () => {
    const [height, width] = c.size;
    const mask = naiveMask(c.size, c.uncompressed);
    assert.deepEqual(maskToCounts(mask, height, width), c.uncompressed);
    assert.equal(encodeCounts(c.uncompressed), c.counts);
    assert.deepEqual(maskToRle(mask, height, width), { size: c.size, counts: c.counts });
  });

  test(`${c.name}: round trips mask -> RLE -> mask`, () => {
    const [height, width] = c.size;
    const mask = naiveMask(c.size, c.uncompressed);
    assert.deepEqual(rleToMask(maskToRle(mask, height, width)), mask);
  });

  test(`${c.name}: area and bbox equal pycocotools'`, () => {
    for (const counts of [c.counts, c.uncompressed]) {
      assert.equal(rleArea({ size: c.size, counts }), c.area);
      assert.deepEqual(rleBbox({ size: c.size, counts }), c.bbox);
    }
    assert.equal(maskArea(naiveMask(c.size, c.uncompressed)), c.area);
  });
}

test("numbers past 32 bits and negative deltas survive a round trip", () => {
  const counts = [3_000_000_000, 5, 1, 4_000_000_000, 2, 7];
  assert.deepEqual(decodeCounts(encodeCounts(counts)), counts);
});

test("countsOf copies uncompressed counts and expands strings", () => {
  const counts = [2, 3, 1];
  const copy = countsOf({ size: [2, 3], counts });
  assert.deepEqual(copy, counts);
  assert.notEqual(copy, counts);
});

test("runs past the image end are ignored, a truncated string is an error", () => {
  assert.deepEqual(rleToMask({ size: [1, 2], counts: [1, 5] }), Uint8Array.from([0, 1]));
  assert.throws(() => decodeCounts("0?h"), /truncated/);
});
