// Brush and eraser strokes (frontend/static/js/annotator/brush.js) rasterised into a mask and
// sent as compressed COCO RLE that decodes back to the same pixels.
import assert from "node:assert/strict";
import test from "node:test";

import {
  applyStroke,
  masksDiffer,
  paintSegment,
  segmentDistance2,
  strokeEdit,
} from "../../frontend/static/js/annotator/brush.js";
import { maskArea, rleToMask } from "../../frontend/static/js/lib/rle.js";

const W = 40;
const H = 30;
const at = (mask, x, y) => mask[y * W + x];

test("distance to a segment: perpendicular inside, to the end points outside", () => {
  assert.equal(segmentDistance2(5, 3, 0, 0, 10, 0), 9);
  assert.equal(segmentDistance2(13, 4, 0, 0, 10, 0), 25);
  assert.equal(segmentDistance2(2, 2, 1, 1, 1, 1), 2); // a point segment
});

test("one point paints a disc of pixels whose centres lie within the radius", () => {
  const mask = applyStroke(null, W, H, [[10, 10]], 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const inside = (x + 0.5 - 10) ** 2 + (y + 0.5 - 10) ** 2 <= 9;
      assert.equal(at(mask, x, y), inside ? 1 : 0, `${x},${y}`);
    }
  }
  assert.equal(maskArea(mask), 32); // the 32 pixel centres within 3 px of (10, 10)
});

test("a stroke covers the whole capsule along the polyline, clipped to the frame", () => {
  const mask = applyStroke(null, W, H, [[-5, 5], [20, 5], [20, 40]], 1.5);
  for (let x = 0; x <= 19; x++) assert.equal(at(mask, x, 5), 1, `row 5, x ${x}`);
  for (let y = 5; y < H; y++) assert.equal(at(mask, 20, y), 1, `column 20, y ${y}`);
  assert.equal(at(mask, 10, 9), 0);
  assert.equal(mask.length, W * H);
});

test("the eraser clears pixels and leaves the base mask untouched", () => {
  const base = new Uint8Array(W * H).fill(1);
  const erased = applyStroke(base, W, H, [[0, 0], [39, 0]], 2, true);
  assert.equal(at(erased, 20, 0), 0);
  assert.equal(at(erased, 20, 1), 0);
  assert.equal(at(erased, 20, 5), 1);
  assert.equal(maskArea(base), W * H);
  assert.ok(masksDiffer(base, erased, W * H));
  assert.ok(!masksDiffer(base, Uint8Array.from(base), W * H));
  assert.ok(!masksDiffer(null, new Uint8Array(W * H), W * H));
});

test("paintSegment reports how many pixels changed", () => {
  const mask = new Uint8Array(W * H);
  const first = paintSegment(mask, W, H, 5, 5, 5, 5, 2, 1);
  assert.ok(first > 0);
  assert.equal(paintSegment(mask, W, H, 5, 5, 5, 5, 2, 1), 0);
});

test("strokeEdit sends the frame's whole mask as compressed RLE that decodes to it", () => {
  const base = new Uint8Array(W * H);
  base[3 * W + 30] = 1; // a pixel the stroke does not touch stays
  const { mask, edit } = strokeEdit(base, W, H, 7, [[4, 4], [25, 20]], 2.5, "brush");
  assert.equal(edit.frame_index, 7);
  assert.equal(edit.tool, "brush");
  assert.equal(edit.prompt, null);
  assert.deepEqual(edit.rle.size, [H, W]);
  assert.equal(typeof edit.rle.counts, "string");
  assert.deepEqual(rleToMask(edit.rle), mask);
  assert.equal(at(mask, 30, 3), 1);
  assert.equal(at(mask, 4, 4), 1);
  assert.equal(at(mask, 25, 20), 1);
  const erased = strokeEdit(mask, W, H, 7, [[0, 0], [39, 29]], 40, "eraser");
  assert.equal(maskArea(erased.mask), 0);
  assert.equal(erased.edit.tool, "eraser");
  assert.equal(maskArea(rleToMask(erased.edit.rle)), 0);
});
