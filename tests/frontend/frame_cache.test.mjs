// FrameCache (frontend/static/js/lib/frame_cache.js) with a fake loader: no images, no network.
import assert from "node:assert/strict";
import test from "node:test";

import { FrameCache } from "../../frontend/static/js/lib/frame_cache.js";

/** A loader whose loads finish when the test says so; `calls` lists URLs in request order. */
function fakeLoader({ failing = new Set() } = {}) {
  const calls = [];
  const pending = new Map();
  const load = (url) => {
    calls.push(url);
    return new Promise((resolve, reject) => {
      pending.set(url, () => (failing.has(url) ? reject(new Error("404")) : resolve(`img:${url}`)));
    });
  };
  const finish = async (url) => {
    await settle();
    pending.get(url)();
    pending.delete(url);
    await settle();
  };
  const finishAll = async () => {
    await settle();
    for (const url of [...pending.keys()]) await finish(url);
  };
  return { load, calls, finish, finishAll };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
const urlOf = (i) => `/f/${i}.jpg`;

test("a frame asked for twice while loading is loaded once", async () => {
  const loader = fakeLoader();
  const cache = new FrameCache({ capacity: 4, load: loader.load });
  const first = cache.get("/a.jpg");
  const second = cache.get("/a.jpg");
  assert.equal(first, second);
  await loader.finish("/a.jpg");
  assert.equal(await first, "img:/a.jpg");
  assert.equal(await cache.get("/a.jpg"), "img:/a.jpg");
  assert.deepEqual(loader.calls, ["/a.jpg"]);
});

test("the cache keeps at most `capacity` frames, dropping the least recently used", async () => {
  const loader = fakeLoader();
  const cache = new FrameCache({ capacity: 3, load: loader.load });
  for (const url of ["/1", "/2", "/3"]) cache.get(url);
  cache.get("/1"); // now /2 is the oldest
  cache.get("/4");
  assert.equal(cache.size, 3);
  assert.ok(cache.has("/1") && cache.has("/3") && cache.has("/4"));
  assert.ok(!cache.has("/2"));
  await loader.finishAll();
  cache.get("/2"); // evicted, so loaded again
  assert.deepEqual(loader.calls, ["/1", "/2", "/3", "/4", "/2"]);
  assert.equal(cache.size, 3);
});

test("prefetch asks for the next frames nearest first, then the previous one", async () => {
  const loader = fakeLoader();
  const cache = new FrameCache({ capacity: 10, load: loader.load });
  const urls = cache.prefetchAround(5, urlOf, { count: 20, ahead: 3, behind: 1 });
  assert.deepEqual(urls, ["/f/6.jpg", "/f/7.jpg", "/f/8.jpg", "/f/4.jpg"]);
  await settle();
  assert.deepEqual(loader.calls, urls);
});

test("prefetch stays inside the video and does not reload frames cached or loading", async () => {
  const loader = fakeLoader();
  const cache = new FrameCache({ capacity: 10, load: loader.load });
  cache.get(urlOf(9));
  assert.deepEqual(cache.prefetchAround(8, urlOf, { count: 10, ahead: 3, behind: 2 }), [
    "/f/9.jpg",
    "/f/7.jpg",
    "/f/6.jpg",
  ]);
  assert.deepEqual(cache.prefetchAround(0, urlOf, { count: 10, ahead: 1, behind: 2 }), ["/f/1.jpg"]);
  await settle();
  assert.deepEqual(loader.calls, ["/f/9.jpg", "/f/7.jpg", "/f/6.jpg", "/f/1.jpg"]);
});

test("prefetch never evicts the frame on screen", async () => {
  const loader = fakeLoader();
  const cache = new FrameCache({ capacity: 3, load: loader.load });
  cache.get(urlOf(0));
  const urls = cache.prefetchAround(0, urlOf, { count: 100, ahead: 5, behind: 0 });
  assert.deepEqual(urls, ["/f/1.jpg", "/f/2.jpg"]);
  assert.ok(cache.has(urlOf(0)));
  assert.equal(cache.size, 3);
});

test("a failed load resolves to null and is retried next time", async () => {
  const loader = fakeLoader({ failing: new Set(["/missing.jpg"]) });
  const cache = new FrameCache({ capacity: 3, load: loader.load });
  const pending = cache.get("/missing.jpg");
  await loader.finish("/missing.jpg");
  assert.equal(await pending, null);
  assert.ok(!cache.has("/missing.jpg"));
  cache.get("/missing.jpg");
  await settle();
  assert.deepEqual(loader.calls, ["/missing.jpg", "/missing.jpg"]);
});

test("a loader that throws synchronously also gives null", async () => {
  const cache = new FrameCache({
    load: () => {
      throw new Error("boom");
    },
  });
  assert.equal(await cache.get("/x.jpg"), null);
  assert.ok(!cache.has("/x.jpg"));
});

test("capacity must be at least one", () => {
  assert.throws(() => new FrameCache({ capacity: 0 }), RangeError);
});
