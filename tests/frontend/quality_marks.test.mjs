// Quality marks shared by the review player and the workspace timeline
// (frontend/static/js/lib/quality_marks.js): jitter bands, marked frames, spans, fetch caching.
import assert from "node:assert/strict";
import test from "node:test";

import {
  QualityMarks,
  jitterLevel,
  jitterText,
  markSpans,
  markTitle,
  markedFrames,
} from "../../frontend/static/js/lib/quality_marks.js";

test("jitter bands and the reviewer's text", () => {
  assert.equal(jitterLevel(0), "steady");
  assert.equal(jitterLevel(0.03), "some");
  assert.equal(jitterLevel(0.2), "shaky");
  assert.equal(jitterLevel(null), "unknown");
  assert.equal(jitterLevel(Number.NaN), "unknown");
  assert.equal(jitterText(0.0341), "0.034 (some jitter)");
  assert.match(jitterText(null), /not measurable/);
});

test("marked frames: inside the video, unique, sorted", () => {
  assert.deepEqual(markedFrames({ marks: [9, 3, 3, -1, 40, 2.5] }, 10), [3, 9]);
  assert.deepEqual(markedFrames(null, 10), []);
  assert.deepEqual(markedFrames({}, 10), []);
});

test("a mark's title gives its suspicion", () => {
  const quality = { frame_suspicion: { 4: 0.87 } };
  assert.equal(markTitle(4, quality), "frame 4: likely needs a correction (suspicion 87%)");
  assert.equal(markTitle(5, quality), "frame 5: likely needs a correction");
});

test("spans cover each marked frame and stay visible on long videos", () => {
  assert.deepEqual(markSpans([0, 5], 10, 100), [[0, 10], [50, 10]]);
  assert.deepEqual(markSpans([999], 1000, 200), [[199, 2]]);
  assert.deepEqual(markSpans([1], 0, 100), []);
});

function manualTimers() {
  const pending = new Map();
  let next = 1;
  return {
    setTimer: (fn) => {
      pending.set(next, fn);
      return next++;
    },
    clearTimer: (id) => pending.delete(id),
    async flush() {
      const fns = [...pending.values()];
      pending.clear();
      for (const fn of fns) await fn();
    },
    get size() {
      return pending.size;
    },
  };
}

test("QualityMarks fetches once per signature, after the last change, and caches", async () => {
  const timers = manualTimers();
  const urls = [];
  const marks = new QualityMarks(
    async (url) => {
      urls.push(url);
      return { marks: [urls.length] };
    },
    { draft: true, ...timers },
  );
  const updates = [];
  const onUpdate = (id, q) => updates.push([id, q.marks]);
  marks.request(7, "a", onUpdate);
  marks.request(7, "b", onUpdate); // replaces the pending fetch
  marks.request(7, "b", onUpdate); // same signature: nothing new
  assert.equal(timers.size, 1);
  await timers.flush();
  assert.deepEqual(urls, ["/api/masklets/7/quality/?draft=1"]);
  assert.deepEqual(updates, [[7, [1]]]);
  assert.deepEqual(marks.get(7), { marks: [1] });
  marks.request(7, "b", onUpdate);
  assert.equal(timers.size, 0);
  marks.forget(7);
  assert.equal(marks.get(7), null);
});

test("a failed fetch leaves the marks as they were", async () => {
  const timers = manualTimers();
  const marks = new QualityMarks(async () => {
    throw new Error("offline");
  }, timers);
  marks.request(1, "x", () => assert.fail("no update on failure"));
  await timers.flush();
  assert.equal(marks.get(1), null);
});

test("the workspace refetches marks when an object's frames change", async () => {
  const { framesSignature, PRESENT, ABSENT } = await import(
    "../../frontend/static/js/annotator/timeline.js"
  );
  const obj = (states, edited = []) => ({
    states: Uint8Array.from(states),
    edited: new Set(edited),
    prompted: new Set([0]),
  });
  const before = framesSignature(obj([PRESENT, PRESENT, 0]));
  assert.equal(before, framesSignature(obj([PRESENT, PRESENT, 0])));
  assert.notEqual(before, framesSignature(obj([PRESENT, PRESENT, PRESENT])));
  assert.notEqual(before, framesSignature(obj([PRESENT, ABSENT, 0])));
  assert.notEqual(before, framesSignature(obj([PRESENT, PRESENT, 0], [1])));
});
