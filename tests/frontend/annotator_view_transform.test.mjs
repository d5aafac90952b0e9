// The workspace's view transform (frontend/static/js/annotator/view_transform.js): zoom keeps
// the point under the pointer, pan, fit, and the image/screen round trip.
import assert from "node:assert/strict";
import test from "node:test";

import {
  ViewTransform,
  clampToImage,
  insideImage,
  wheelZoomFactor,
} from "../../frontend/static/js/annotator/view_transform.js";

const close = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

test("image and screen coordinates round-trip", () => {
  const v = new ViewTransform({ scale: 2.5, tx: 30, ty: -12 });
  const [sx, sy] = v.toScreen(10, 20);
  assert.deepEqual([sx, sy], [55, 38]);
  const [ix, iy] = v.toImage(sx, sy);
  close(ix, 10);
  close(iy, 20);
});

test("zooming keeps the image point under the pointer fixed", () => {
  const v = new ViewTransform({ scale: 1, tx: 5, ty: 7 });
  const before = v.toImage(200, 150);
  v.zoomAt(3, 200, 150);
  assert.equal(v.scale, 3);
  const after = v.toImage(200, 150);
  close(after[0], before[0]);
  close(after[1], before[1]);
  v.zoomAt(1 / 3, 200, 150);
  close(v.tx, 5);
  close(v.ty, 7);
});

test("zoom is clamped between the minimum and maximum scale", () => {
  const v = new ViewTransform({ minScale: 0.5, maxScale: 4 });
  v.zoomAt(100, 0, 0);
  assert.equal(v.scale, 4);
  v.zoomAt(1e-6, 0, 0);
  assert.equal(v.scale, 0.5);
});

test("pan moves by screen pixels at any scale", () => {
  const v = new ViewTransform({ scale: 4 });
  const [x0] = v.toImage(100, 100);
  v.panBy(40, 0);
  const [x1] = v.toImage(100, 100);
  close(x0 - x1, 10); // 40 screen px = 10 image px at 4x
});

test("fit centres the whole image inside the view with a margin", () => {
  const v = new ViewTransform().fit(320, 240, 1000, 500, 10);
  close(v.scale, 480 / 240);
  const [left, top] = v.toScreen(0, 0);
  const [right, bottom] = v.toScreen(320, 240);
  close(left + right, 1000); // centred horizontally
  close(top, 10);
  close(bottom, 490);
  assert.deepEqual(v.matrix(), [v.scale, 0, 0, v.scale, v.tx, v.ty]);
});

test("wheel: down zooms out, up zooms in, lines and pages scale, huge deltas are bounded", () => {
  assert.ok(wheelZoomFactor(100) < 1);
  assert.ok(wheelZoomFactor(-100) > 1);
  close(wheelZoomFactor(3, 1), wheelZoomFactor(48, 0));
  assert.equal(wheelZoomFactor(1e9), wheelZoomFactor(300));
  close(wheelZoomFactor(0), 1);
});

test("points outside the frame, NaN and infinities are not inside the image", () => {
  assert.ok(insideImage(0, 0, 320, 240));
  assert.ok(insideImage(320, 240, 320, 240));
  for (const [x, y] of [[-0.1, 5], [5, 240.5], [NaN, 1], [1, Infinity]]) {
    assert.ok(!insideImage(x, y, 320, 240), `${x},${y}`);
  }
  assert.deepEqual(clampToImage(-5, 300, 320, 240), [0, 240]);
});
