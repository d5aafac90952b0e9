/*
 * A propagation job followed from the page: poll the job for progress and the draft for the
 * frames computed so far (GET draft/?since=<version>), so masks appear while it runs; cancel
 * on request. Polling adapts: fast while frames arrive, slower while nothing changes.
 */
import { getJSON, postJSON } from "../lib/api.js";

export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

/** The next poll delay (ms): back to `min` when something changed, else 1.5x up to `max`. */
export function nextDelay(previous, changed, min = 300, max = 2000) {
  return changed ? min : Math.min(max, Math.round(previous * 1.5));
}

export class PropagationRun {
  /**
   * @param {{sync: import("./drafts.js").DraftSync, obj: import("./drafts.js").DraftObject,
   *   job: {id: number}, onProgress: (job: object) => void, onDone: (job: object) => void}} o
   */
  constructor({ sync, obj, job, onProgress, onDone }) {
    this.sync = sync;
    this.obj = obj;
    this.job = job;
    this.onProgress = onProgress;
    this.onDone = onDone;
    this.since = obj.version;
    this.stopped = false;
    this.propagated = new Set(); // frames this run wrote (kept if it is cancelled)
  }

  async run() {
    let delay = 300;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (this.stopped) return;
      let changed = false;
      try {
        this.job = await getJSON(`/api/jobs/${this.job.id}/`);
        const before = this.obj.version;
        const answer = await this.sync.loadSince(this.obj, this.since);
        if (Number.isInteger(answer.version)) this.since = answer.version;
        for (const [key, source] of Object.entries(answer.frame_sources || {})) {
          if (source === "propagated") this.propagated.add(Number(key));
        }
        changed = this.obj.version !== before;
      } catch (error) {
        this.sync.onError(`Following the propagation failed: ${error.message}`);
      }
      this.onProgress(this.job);
      if (TERMINAL.has(this.job.status)) {
        await this.sync.load(this.obj).catch(() => {});
        this.onDone(this.job);
        return;
      }
      delay = nextDelay(delay, changed);
    }
  }

  async cancel() {
    this.job = await postJSON(`/api/jobs/${this.job.id}/cancel/`, {});
    this.onProgress(this.job);
  }

  stop() {
    this.stopped = true;
  }
}
