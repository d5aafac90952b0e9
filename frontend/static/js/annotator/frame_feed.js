/*
 * Where the workspace's frames come from: a bounded FrameCache (lib/frame_cache.js) fed so
 * that scrubbing and playing a long video never stall.
 *
 * - The cursor's frame (frame()) is loaded latest-only: one cursor load at a time; a move
 *   while it runs replaces any move still waiting (those answer null, superseded). A drag across
 *   1,000 frames then costs a load per frame the server can deliver in that time, not one per
 *   position passed, and the page draws each load that completes (see main.js show()).
 * - Prefetch (window()) loads the frames around the cursor, nearest first, at most `maxLoads`
 *   at once, topping up as loads end; a new window cancels the running loads it no longer
 *   holds, so a jump never waits behind frames around the old position.
 */

export class FrameFeed {
  /**
   * @param {{cache: import("../lib/frame_cache.js").FrameCache, urlOf: (i: number) => string,
   *   count: number, maxLoads?: number}} options
   */
  constructor({ cache, urlOf, count, maxLoads = 4 }) {
    this.cache = cache;
    this.urlOf = urlOf;
    this.count = count;
    this.maxLoads = Math.max(1, maxLoads);
    this.cursorUrl = null; // the cursor load running
    this.waiting = null; // {url, resolve} of the latest move waiting for it
    this.wanted = []; // the prefetch window's URLs, in order
    this.requested = 0; // loads started (cursor and prefetch), for benchmarks and tests
  }

  /**
   * The frame `i`: at once when cached or loading; else loaded after the cursor load running
   * (if any). Resolves to null when a later call superseded it before its load began.
   */
  frame(i) {
    const url = this.urlOf(i);
    if (this.cache.has(url)) return this.cache.get(url);
    if (this.cursorUrl === null) return this.startCursor(url);
    if (this.waiting) this.waiting.resolve(null);
    return new Promise((resolve) => {
      this.waiting = { url, resolve };
    });
  }

  startCursor(url) {
    this.cursorUrl = url;
    this.requested += 1;
    const loading = this.cache.get(url);
    const next = () => {
      if (this.cursorUrl === url) this.cursorUrl = null;
      const waiting = this.waiting;
      this.waiting = null;
      if (waiting) waiting.resolve(this.cache.has(waiting.url) ? this.cache.get(waiting.url) : this.startCursor(waiting.url));
      this.pump();
    };
    loading.then(next, next);
    return loading;
  }

  /**
   * Prefetch around `cursor`: `ahead` next frames nearest first, then `behind` previous ones.
   * Running loads outside the window (and not the cursor's) are cancelled.
   * @returns {string[]} the window's URLs
   */
  window(cursor, { ahead, behind }) {
    const order = [];
    for (let k = 1; k <= ahead && cursor + k < this.count; k++) order.push(cursor + k);
    for (let k = 1; k <= behind && cursor - k >= 0; k++) order.push(cursor - k);
    // Never more than the cache holds besides the frame on screen.
    this.wanted = order.slice(0, Math.max(0, this.cache.capacity - 1)).map(this.urlOf);
    const keep = new Set(this.wanted);
    keep.add(this.urlOf(cursor));
    if (this.cursorUrl !== null) keep.add(this.cursorUrl);
    if (this.waiting) keep.add(this.waiting.url);
    this.cache.cancelLoads((url) => keep.has(url));
    this.pump();
    return this.wanted;
  }

  /** Moving away: cancel the prefetches (the cursor's own load keeps running). */
  leave() {
    this.wanted = [];
    const keep = new Set([this.cursorUrl, this.waiting?.url].filter(Boolean));
    this.cache.cancelLoads((url) => keep.has(url));
  }

  /** Start window loads while fewer than maxLoads run; each one's end tops up again. */
  pump() {
    for (const url of this.wanted) {
      if (this.cache.loading >= this.maxLoads) return;
      if (this.cache.has(url)) {
        this.cache.get(url); // keeps it among the most recently used
        continue;
      }
      this.requested += 1;
      const done = () => this.pump();
      this.cache.get(url).then(done, done);
    }
  }
}
