/*
 * A bounded cache of decoded frame images, keyed by URL.
 *
 * Entries are promises, so a frame asked for twice while it is still loading is fetched once.
 * The least recently used entry is dropped past `capacity`, which bounds the memory a long video
 * takes (a decoded 854x480 frame is about 1.6 MB). A failed load resolves to null and is not kept,
 * so a frame missing because of a transient error is retried on the next visit. A load evicted
 * before it ends, or cancelled, is aborted (the loader receives an AbortSignal).
 */

/**
 * Load and decode one image; null when it cannot be loaded or the load was aborted.
 * @param {string} url
 * @param {AbortSignal} [signal] aborting it stops the download (the image's src is cleared)
 * @returns {Promise<HTMLImageElement | null>}
 */
export function loadImage(url, signal) {
  const img = new Image();
  if (signal) signal.addEventListener("abort", () => img.removeAttribute("src"), { once: true });
  img.src = url;
  // decode() resolves once the pixels are ready to draw, so drawing never waits on decoding.
  return img.decode().then(
    () => (signal?.aborted ? null : img),
    () => null,
  );
}

export class FrameCache {
  /**
   * @param {{capacity?: number, load?: (url: string) => Promise<any>}} [options]
   *   capacity: the most frames kept; load: the loader (tests pass a fake one).
   */
  constructor({ capacity = 48, load = loadImage } = {}) {
    if (!(capacity >= 1)) throw new RangeError("FrameCache capacity must be at least 1");
    this.capacity = capacity;
    this.load = load;
    this.entries = new Map(); // url -> Promise; Map order is recency order, oldest first
    this.running = new Map(); // url -> AbortController of a load still running
  }

  /** Loads still running. */
  get loading() {
    return this.running.size;
  }

  get size() {
    return this.entries.size;
  }

  has(url) {
    return this.entries.has(url);
  }

  /**
   * The frame at `url`, loading it unless it is cached or already loading.
   * @param {string} url
   * @returns {Promise<any>} the loader's value, or null when the load failed
   */
  get(url) {
    let entry = this.entries.get(url);
    if (entry !== undefined) {
      this.entries.delete(url); // move to the most recent end
      this.entries.set(url, entry);
      return entry;
    }
    // The loader gets an AbortSignal: a load evicted or cancelled (cancelLoads) stops.
    const controller = typeof AbortController === "function" ? new AbortController() : null;
    this.running.set(url, controller);
    const loading = (async () => {
      try {
        return (await this.load(url, controller?.signal)) ?? null; // starts now, not a tick later
      } catch {
        return null;
      } finally {
        if (this.running.get(url) === controller) this.running.delete(url);
      }
    })();
    entry = loading.then((value) => {
      // Forget failures, but only if this entry was not evicted and replaced meanwhile.
      if (value === null && this.entries.get(url) === entry) this.entries.delete(url);
      return value;
    });
    this.entries.set(url, entry);
    this.evict();
    return entry;
  }

  /**
   * Warm the frames around `cursor`: the `ahead` next ones first (playback goes forward), nearest
   * first, then the `behind` previous ones. The cursor's own frame is not fetched here.
   * @param {number} cursor frame index
   * @param {(index: number) => string} urlOf
   * @param {{count: number, ahead?: number, behind?: number}} options count: number of frames
   * @returns {string[]} the URLs asked for, in order
   */
  prefetchAround(cursor, urlOf, { count, ahead = 3, behind = 1 }) {
    const order = [];
    for (let k = 1; k <= ahead && cursor + k < count; k++) order.push(cursor + k);
    for (let k = 1; k <= behind && cursor - k >= 0; k++) order.push(cursor - k);
    // Never evict the frame on screen, nor one prefetched a moment ago, to make room.
    const room = Math.max(0, this.capacity - 1);
    const urls = order.slice(0, room).map(urlOf);
    for (const url of urls) this.get(url); // also marks cached ones as recently used
    return urls;
  }

  /**
   * Stop the loads still running whose URL `keep` rejects, and forget them (a later get loads
   * again): frames around a cursor that moved away should not hold the connections.
   * @param {(url: string) => boolean} keep
   * @returns {number} loads cancelled
   */
  cancelLoads(keep) {
    let cancelled = 0;
    for (const url of [...this.running.keys()]) {
      if (keep(url)) continue;
      this.drop(url);
      cancelled += 1;
    }
    return cancelled;
  }

  drop(url) {
    const controller = this.running.get(url);
    if (controller !== undefined) {
      this.running.delete(url);
      controller?.abort();
    }
    this.entries.delete(url);
  }

  clear() {
    for (const url of [...this.running.keys()]) this.drop(url);
    this.entries.clear();
  }

  evict() {
    while (this.entries.size > this.capacity) this.drop(this.entries.keys().next().value);
  }
}
