/*
 * Telemetry of the frames the workspace shows (`frame_view` events): the server counts the
 * time between an annotator's actions as active time, and looking at frames is part of the
 * work even when nothing is edited.
 *
 * Each frame shown is queued with the time it was shown (a repeat of the last frame is not);
 * the queue goes to POST /api/annotation/events/ every few seconds, or at once when it reaches
 * a full batch, each event saying how long before the request it happened (`age_ms`), so the
 * server dates it without trusting the browser's clock. Best effort: a failed batch is dropped
 * (the figures lose a few seconds, the annotator loses nothing) and never shown as an error;
 * after a refusal that will not change (the lease is gone) the reporter stops.
 */
import { csrfToken } from "../lib/api.js";

export const EVENTS_URL = "/api/annotation/events/";
export const MAX_BATCH = 200; // the server's limit per request
export const FLUSH_EVERY_MS = 4000;
const MAX_AGE_MS = 5 * 60 * 1000; // the server refuses older views

/** POST a batch; `keepalive` lets it outlive the page (pagehide). Resolves to the status. */
async function postBatch(url, events, keepalive) {
  const response = await globalThis.fetch(url, {
    method: "POST",
    credentials: "same-origin",
    keepalive,
    headers: {
      Accept: "application/json",
      "Content-Type": "application/json",
      "X-CSRFToken": csrfToken(),
    },
    body: JSON.stringify({ events }),
  });
  return response.status;
}

export class FrameViewReporter {
  /**
   * @param {{leaseId: number, url?: string, now?: () => number,
   *          send?: (url: string, events: object[], keepalive: boolean) => Promise<number>}} options
   *   now: milliseconds (performance.now by default); send: resolves to the HTTP status.
   */
  constructor({ leaseId, url = EVENTS_URL, now, send = postBatch }) {
    this.leaseId = leaseId;
    this.url = url;
    this.now = now || (() => globalThis.performance.now());
    this.send = send;
    this.queue = []; // {frame, at}
    this.last = null;
    this.stopped = false;
    this.timer = null;
  }

  /** Note that frame `frame` is on screen now. */
  view(frame) {
    if (this.stopped || frame === this.last) return;
    this.last = frame;
    this.queue.push({ frame, at: this.now() });
    if (this.queue.length >= MAX_BATCH) this.flush();
  }

  /** Send what is queued (at most MAX_BATCH views per request). Never throws. */
  async flush({ keepalive = false } = {}) {
    if (this.stopped || !this.queue.length) return 0;
    const now = this.now();
    const batch = this.queue.splice(0, MAX_BATCH);
    const events = batch
      .map(({ frame, at }) => ({
        lease: this.leaseId,
        kind: "frame_view",
        frame_index: frame,
        age_ms: Math.max(0, Math.round(now - at)),
      }))
      .filter((e) => e.age_ms <= MAX_AGE_MS);
    if (!events.length) return 0;
    let status = 0;
    try {
      status = await this.send(this.url, events, keepalive);
    } catch {
      return 0; // offline or the page is closing: best effort
    }
    // 404 / 409: the lease is not (or no longer) ours; nothing later would be accepted.
    if (status === 404 || status === 409 || status === 403) this.stop();
    return status >= 200 && status < 300 ? events.length : 0;
  }

  /** Flush every `everyMs`, and when the page is hidden or closed. */
  start(everyMs = FLUSH_EVERY_MS, target = globalThis) {
    this.timer = setInterval(() => this.flush(), everyMs);
    if (target && target.addEventListener) {
      target.addEventListener("pagehide", () => this.flush({ keepalive: true }));
      const doc = target.document;
      if (doc && doc.addEventListener) {
        doc.addEventListener("visibilitychange", () => {
          if (doc.visibilityState === "hidden") this.flush({ keepalive: true });
        });
      }
    }
    return this;
  }

  stop() {
    this.stopped = true;
    this.queue = [];
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
