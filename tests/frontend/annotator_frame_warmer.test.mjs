// Frame warm-ups of the workspace (annotator/frame_warmer.js): only a cursor at rest asks,
// once per frame; a refusal that will not change stops it, a network error does not.
import assert from "node:assert/strict";
import test from "node:test";

import { FrameWarmer } from "../../frontend/static/js/annotator/frame_warmer.js";

function warmer(failures = []) {
  const timers = new Map();
  let next = 1;
  const posted = [];
  const w = new FrameWarmer({
    leaseId: 7,
    restMs: 600,
    post: async (url, body) => {
      posted.push({ url, body });
      const failure = failures.shift();
      if (failure) throw failure;
      return { sent: true };
    },
    setTimer: (fn, ms) => {
      timers.set(next, { fn, ms });
      return next++;
    },
    clearTimer: (id) => timers.delete(id),
  });
  const fire = async () => {
    const pending = [...timers.values()];
    timers.clear();
    for (const t of pending) t.fn();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { w, posted, timers, fire };
}

test("only the frame the cursor rests on is asked for, once", async () => {
  const { w, posted, timers, fire } = warmer();
  w.rest(3);
  w.rest(4); // a drag: frame 3's timer is cancelled
  w.rest(5);
  assert.equal(timers.size, 1);
  assert.equal([...timers.values()][0].ms, 600);
  await fire();
  assert.deepEqual(posted, [{ url: "/api/annotation/leases/7/warm/", body: { frame_index: 5 } }]);
  w.rest(5); // back on a frame already asked for: nothing
  assert.equal(timers.size, 0);
  w.rest(6);
  w.cancel(); // playback started
  await fire();
  assert.equal(posted.length, 1);
});

test("a refusal stops the warmer; a network error lets the frame be asked again", async () => {
  const network = Object.assign(new Error("offline"), { status: 0 });
  const gone = Object.assign(new Error("No such lease"), { status: 404 });
  const { w, posted, timers, fire } = warmer([network, gone]);
  assert.equal(await w.ask(2), false);
  assert.equal(await w.ask(2), false); // asked again after the network error: refused
  assert.equal(posted.length, 2);
  w.rest(8);
  assert.equal(timers.size, 0); // stopped
  await fire();
  assert.equal(await w.ask(9), false);
  assert.equal(posted.length, 2);
});

test("with the selected object, its correction is asked for once per draft version", async () => {
  const { w, posted, timers, fire } = warmer();
  w.rest(4, { id: 31, version: 2 });
  await fire();
  w.rest(4, { id: 31, version: 2 }); // nothing changed: nothing asked
  assert.equal(timers.size, 0);
  w.rest(4, { id: 31, version: 3 }); // a propagation later: the memory to prepare changed
  await fire();
  w.rest(4, { id: 32, version: 1 }); // another object selected
  await fire();
  w.rest(4); // the frame alone was not asked yet
  await fire();
  assert.deepEqual(
    posted.map((p) => p.body),
    [
      { frame_index: 4, masklet_id: 31 },
      { frame_index: 4, masklet_id: 31 },
      { frame_index: 4, masklet_id: 32 },
      { frame_index: 4 },
    ],
  );
});
