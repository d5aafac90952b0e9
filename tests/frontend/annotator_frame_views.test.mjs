// Frame-view telemetry of the workspace (annotator/frame_views.js): batching, ages, the batch
// limit, best effort on failures, and stopping when the lease is gone.
import assert from "node:assert/strict";
import test from "node:test";

import { FrameViewReporter, MAX_BATCH } from "../../frontend/static/js/annotator/frame_views.js";

function reporter(statuses = []) {
  let clock = 0;
  const sent = [];
  const r = new FrameViewReporter({
    leaseId: 7,
    now: () => clock,
    send: async (url, events, keepalive) => {
      sent.push({ url, events, keepalive });
      const status = statuses.length ? statuses.shift() : 201;
      if (status instanceof Error) throw status;
      return status;
    },
  });
  return { r, sent, tick: (ms) => { clock += ms; } };
}

test("views are batched with their age; a repeat of the last frame is not queued", async () => {
  const { r, sent, tick } = reporter();
  r.view(0);
  tick(1000);
  r.view(0);
  r.view(1);
  tick(2500);
  r.view(2);
  tick(500);
  assert.equal(await r.flush(), 3);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].url, "/api/annotation/events/");
  assert.deepEqual(sent[0].events, [
    { lease: 7, kind: "frame_view", frame_index: 0, age_ms: 4000 },
    { lease: 7, kind: "frame_view", frame_index: 1, age_ms: 3000 },
    { lease: 7, kind: "frame_view", frame_index: 2, age_ms: 500 },
  ]);
  assert.equal(await r.flush(), 0); // nothing queued: nothing sent
  assert.equal(sent.length, 1);
});

test("a full batch goes at once; never more than the server's limit per request", async () => {
  const { r, sent } = reporter();
  for (let i = 0; i < MAX_BATCH + 5; i += 1) r.view(i);
  await Promise.resolve();
  assert.equal(sent.length, 1);
  assert.equal(sent[0].events.length, MAX_BATCH);
  assert.equal(r.queue.length, 5);
  await r.flush({ keepalive: true });
  assert.deepEqual([sent[1].events.length, sent[1].keepalive], [5, true]);
});

test("failures are dropped quietly; a lost lease stops the reporter", async () => {
  const { r, sent } = reporter([new Error("offline"), 500, 409]);
  r.view(1);
  assert.equal(await r.flush(), 0); // network error: dropped, no throw
  r.view(2);
  assert.equal(await r.flush(), 0); // server error: dropped
  assert.equal(r.stopped, false);
  r.view(3);
  assert.equal(await r.flush(), 0); // 409: the lease is not ours any more
  assert.equal(r.stopped, true);
  r.view(4);
  assert.equal(await r.flush(), 0);
  assert.equal(sent.length, 3);
});

test("views older than the server accepts are not sent", async () => {
  const { r, sent, tick } = reporter();
  r.view(1);
  tick(6 * 60 * 1000);
  r.view(2);
  assert.equal(await r.flush(), 1);
  assert.deepEqual(sent[0].events.map((e) => e.frame_index), [2]);
});
