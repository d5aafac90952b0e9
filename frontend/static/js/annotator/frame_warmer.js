/*
 * Asks the model worker to embed the frame the cursor rests on (POST
 * /api/annotation/leases/<id>/warm/), so that the annotator's first click there finds the
 * frame's features instead of waiting for the image encoder (about 2 s on a 2-core CPU worker
 * for hiera_t at 1024 px). Only once the cursor has rested `restMs` on a frame (a drag or
 * playback asks nothing: the worker would embed frames nobody clicks, ahead of real clicks),
 * once per frame a page. Best effort: a failed request is forgotten, and after a refusal that
 * will not change (the lease is gone, 4xx) the warmer stops.
 */
import { postJSON } from "../lib/api.js";

export const REST_MS = 600;

export class FrameWarmer {
  /**
   * @param {{leaseId: number, restMs?: number,
   *          post?: (url: string, body: object) => Promise<any>,
   *          setTimer?: Function, clearTimer?: Function}} options
   *   post: rejects with an error carrying `status` (lib/api.js's ApiError) when refused.
   */
  constructor({ leaseId, restMs = REST_MS, post = postJSON, setTimer, clearTimer }) {
    this.url = `/api/annotation/leases/${leaseId}/warm/`;
    this.restMs = restMs;
    this.post = post;
    this.setTimer = setTimer || ((fn, ms) => globalThis.setTimeout(fn, ms));
    this.clearTimer = clearTimer || ((id) => globalThis.clearTimeout(id));
    this.asked = new Set(); // frames already asked for on this page
    this.timer = null;
    this.stopped = false;
  }

  /** The cursor is on `frame` now; ask for it if it stays there `restMs`. */
  rest(frame) {
    this.cancel();
    if (this.stopped || this.asked.has(frame)) return;
    this.timer = this.setTimer(() => {
      this.timer = null;
      this.ask(frame);
    }, this.restMs);
  }

  /** The cursor moved on (a drag, playback): nothing is asked for the frame it left. */
  cancel() {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
  }

  /** Ask now; resolves to whether the server accepted. */
  async ask(frame) {
    if (this.stopped || this.asked.has(frame)) return false;
    this.asked.add(frame);
    try {
      await this.post(this.url, { frame_index: frame });
      return true;
    } catch (error) {
      const status = error && typeof error.status === "number" ? error.status : 0;
      if (status >= 400 && status < 500 && status !== 429) this.stopped = true;
      else this.asked.delete(frame); // a network error or a 5xx: it may be asked again
      return false;
    }
  }
}
