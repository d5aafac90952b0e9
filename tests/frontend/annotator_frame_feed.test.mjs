// The workspace's frame feed (annotator/frame_feed.js) over a FrameCache with a fake loader,
// the cache's cancellation (lib/frame_cache.js) and the film strip's layout
// (annotator/timeline_strip.js): no images, no network.
import assert from "node:assert/strict";
import test from "node:test";

import { FrameFeed } from "../../frontend/static/js/annotator/frame_feed.js";
import { stripFrames, stripSlots } from "../../frontend/static/js/annotator/timeline_strip.js";
import { FrameCache } from "../../frontend/static/js/lib/frame_cache.js";

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
const urlOf = (i) => `/f/${i}.jpg`;

/** Loads that end when the test says; aborted ones reject as a browser's would. */
function fakeLoader() {
  const calls = [];
  const pending = new Map();
  const aborted = [];
  const load = (url, signal) => {
    calls.push(url);
    return new Promise((resolve, reject) => {
      pending.set(url, () => resolve(`img:${url}`));
      signal?.addEventListener("abort", () => {
        aborted.push(url);
        pending.delete(url);
        reject(new Error("aborted"));
      });
    });
  };
  const finish = async (url) => {
    await settle();
    const done = pending.get(url);
    assert.ok(done, `${url} is not loading`);
    pending.delete(url);
    done();
    await settle();
  };
  return { load, calls, pending, aborted, finish };
}

function feed({ capacity = 16, maxLoads = 2, count = 100 } = {}) {
  const loader = fakeLoader();
  const cache = new FrameCache({ capacity, load: loader.load });
  return { loader, cache, feed: new FrameFeed({ cache, urlOf, count, maxLoads }) };
}

test("a drag loads one cursor frame at a time, then only the latest position", async () => {
  const { loader, feed: f } = feed();
  const first = f.frame(1);
  const passed = [2, 3, 4].map((i) => f.frame(i));
  const latest = f.frame(5);
  assert.deepEqual(loader.calls, [urlOf(1)]);
  // the positions passed over while frame 1 loaded are superseded without a request
  assert.deepEqual(await Promise.all(passed), [null, null, null]);
  await loader.finish(urlOf(1));
  assert.equal(await first, "img:/f/1.jpg");
  assert.deepEqual(loader.calls, [urlOf(1), urlOf(5)]);
  await loader.finish(urlOf(5));
  assert.equal(await latest, "img:/f/5.jpg");
  assert.equal(f.requested, 2);
});

test("prefetch keeps at most maxLoads running and tops up as they end", async () => {
  const { loader, cache, feed: f } = feed({ maxLoads: 2 });
  f.window(10, { ahead: 3, behind: 1 });
  assert.deepEqual(loader.calls, [urlOf(11), urlOf(12)]);
  await loader.finish(urlOf(11));
  assert.deepEqual(loader.calls, [urlOf(11), urlOf(12), urlOf(13)]);
  await loader.finish(urlOf(12));
  await loader.finish(urlOf(13));
  assert.deepEqual(loader.calls.slice(3), [urlOf(9)]);
  await loader.finish(urlOf(9));
  assert.equal(cache.loading, 0);
});

test("a jump cancels the prefetches of the old neighbourhood, not the cursor's load", async () => {
  const { loader, cache, feed: f } = feed({ maxLoads: 3 });
  f.window(10, { ahead: 3, behind: 0 });
  assert.deepEqual(loader.calls, [urlOf(11), urlOf(12), urlOf(13)]);
  const cursor = f.frame(80);
  f.leave();
  assert.deepEqual(loader.aborted.sort(), [urlOf(11), urlOf(12), urlOf(13)]);
  assert.equal(cache.has(urlOf(12)), false); // a later visit loads it again
  assert.equal(cache.loading, 1);
  await loader.finish(urlOf(80));
  assert.equal(await cursor, "img:/f/80.jpg");
  // the new window keeps what it holds and cancels the rest
  f.window(80, { ahead: 2, behind: 0 });
  assert.deepEqual(loader.calls.slice(-2), [urlOf(81), urlOf(82)]);
  f.window(81, { ahead: 1, behind: 0 });
  assert.deepEqual(loader.aborted.slice(3), []);
  f.window(50, { ahead: 1, behind: 0 });
  assert.deepEqual(loader.aborted.slice(3).sort(), [urlOf(81), urlOf(82)].sort());
});

test("the cache never holds more than its capacity, evicted loads are aborted", async () => {
  const { loader, cache, feed: f } = feed({ capacity: 4, maxLoads: 8 });
  f.window(0, { ahead: 10, behind: 0 });
  assert.equal(loader.calls.length, 3); // capacity - 1: the frame on screen keeps its place
  for (let i = 0; i < 30; i++) {
    f.frame(i);
    assert.ok(cache.size <= 4, `size ${cache.size}`);
    await settle();
    for (const url of [...loader.pending.keys()]) await loader.finish(url);
  }
  assert.ok(cache.size <= 4);
});

test("the film strip shows evenly spaced frames that fit its width", () => {
  assert.deepEqual(stripFrames(1000, 4), [125, 375, 625, 875]);
  assert.deepEqual(stripFrames(3, 10), [0, 1, 2]);
  assert.deepEqual(stripFrames(0, 10), []);
  assert.equal(stripSlots(1280, 36, 16 / 9), 20);
  assert.equal(stripSlots(10, 36, 4 / 3), 1);
  const frames = stripFrames(1000, stripSlots(1100, 36, 16 / 9));
  assert.ok(frames.length <= 20);
  assert.ok(frames.every((f, k) => k === 0 || f > frames[k - 1]));
});
