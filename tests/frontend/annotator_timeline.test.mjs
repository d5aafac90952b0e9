// Timeline presence per frame (frontend/static/js/annotator/timeline.js): states from a
// draft's RLE frames, runs, prompted frames, bucketing to a row's pixel width, hit testing.
import assert from "node:assert/strict";
import test from "node:test";

import {
  ABSENT,
  NOT_ANNOTATED,
  PRESENT,
  bucketize,
  frameAtX,
  frameSpan,
  presence,
  promptedFrames,
  runs,
} from "../../frontend/static/js/annotator/timeline.js";
import { maskToRle } from "../../frontend/static/js/lib/rle.js";

const H = 4;
const W = 5;
const full = maskToRle(new Uint8Array(H * W).fill(1), H, W);
const empty = maskToRle(new Uint8Array(H * W), H, W);

test("presence: a mask is present, null or an empty mask is absent, the rest unannotated", () => {
  const states = presence({ 0: full, 2: null, 3: empty, 5: full, 9: full, "-1": full, x: full }, 7);
  assert.deepEqual(Array.from(states), [PRESENT, 0, ABSENT, ABSENT, 0, PRESENT, 0]);
  const fromMap = presence(new Map([[1, full]]), 3);
  assert.deepEqual(Array.from(fromMap), [NOT_ANNOTATED, PRESENT, NOT_ANNOTATED]);
});

test("runs group equal neighbours", () => {
  const states = Uint8Array.from([2, 2, 0, 1, 1, 1, 2]);
  assert.deepEqual(runs(states), [
    { start: 0, end: 2, state: 2 },
    { start: 2, end: 3, state: 0 },
    { start: 3, end: 6, state: 1 },
    { start: 6, end: 7, state: 2 },
  ]);
  assert.deepEqual(runs(new Uint8Array(0)), []);
});

test("prompted frames come from the prompt log", () => {
  const prompts = [{ frame_index: 3 }, { frame_index: 3 }, { frame_index: 10 }, { x: 1 }];
  assert.deepEqual([...promptedFrames(prompts)].sort((a, b) => a - b), [3, 10]);
  assert.equal(promptedFrames(undefined).size, 0);
});

test("bucketize never hides a present frame when many frames share a pixel", () => {
  const states = new Uint8Array(1000);
  states[517] = PRESENT;
  states[10] = ABSENT;
  const cols = bucketize(states, 100);
  assert.equal(cols.length, 100);
  assert.equal(cols[51], PRESENT);
  assert.equal(cols[1], ABSENT);
  assert.equal(cols.filter((c) => c !== NOT_ANNOTATED).length, 2);
});

test("bucketize stretches frames over several columns when there are few", () => {
  const cols = bucketize(Uint8Array.from([PRESENT, NOT_ANNOTATED, ABSENT]), 9);
  assert.deepEqual(Array.from(cols), [2, 2, 2, 0, 0, 0, 1, 1, 1]);
});

test("frameAtX and frameSpan agree and stay in range", () => {
  assert.equal(frameAtX(0, 600, 12), 0);
  assert.equal(frameAtX(599.9, 600, 12), 11);
  assert.equal(frameAtX(700, 600, 12), 11);
  assert.equal(frameAtX(-3, 600, 12), 0);
  for (let i = 0; i < 12; i++) {
    const [x0, x1] = frameSpan(i, 600, 12);
    assert.equal(frameAtX((x0 + x1) / 2, 600, 12), i);
  }
});
