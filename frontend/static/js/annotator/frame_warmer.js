/*
 * Asks the model worker to embed the frame the cursor rests on (POST
 * /api/annotation/leases/<id>/warm/), so that the annotator's first click there finds the
 * frame's features instead of waiting for the image encoder (about 2 s on a 2-core CPU worker
 * for hiera_t at 1024 px). With the selected object (phase 3), the worker also runs the memory
 * attention a correction of that object on the frame needs, when the frame is tracked (about
 * 3 s there), so that a first correction costs what a further click does. Only once the cursor
 * has rested `restMs` on a frame (a drag or playback asks nothing: the worker would embed
 * frames nobody clicks, ahead of real clicks), once per frame, object and draft version a
 * page (a propagation changes the version and so the memory to prepare). Best effort: a failed request is forgotten, and after a refusal that
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
    this.asked = new Set(); // keys of the requests already made on this page
    this.timer = null;
    this.stopped = false;
  }

  /**
   * The cursor is on `frame` now; ask for it if it stays there `restMs`.
   * @param {number} frame
   * @param {{id: number, version: number} | null} object the selected object, whose correction
   *   on the frame is to be prepared (null: the frame only)
   */
  rest(frame, object = null) {
    this.cancel();
    if (this.stopped || this.asked.has(requestKey(frame, object))) return;
    this.timer = this.setTimer(() => {
      this.timer = null;
      this.ask(frame, object);
    }, this.restMs);
  }

  /** The cursor moved on (a drag, playback): nothing is asked for the frame it left. */
  cancel() {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
  }

  /** Ask now; resolves to whether the server accepted. */
  async ask(frame, object = null) {
    const key = requestKey(frame, object);
    if (this.stopped || this.asked.has(key)) return false;
    this.asked.add(key);
    const body = object ? { frame_index: frame, masklet_id: object.id } : { frame_index: frame };
    try {
      await this.post(this.url, body);
      return true;
    } catch (error) {
      const status = error && typeof error.status === "number" ? error.status : 0;
      if (status >= 400 && status < 500 && status !== 429) this.stopped = true;
      else this.asked.delete(key); // a network error or a 5xx: it may be asked again
      return false;
    }
  }
}

function requestKey(frame, object) {
  return object ? `${frame}:${object.id}:${object.version}` : `${frame}`;
}
