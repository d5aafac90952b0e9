/*
 * Frames to check and temporal jitter, from the quality API (GET /api/masklets/<id>/quality/),
 * shared by the review player's timeline and the annotator workspace's timeline.
 *
 * The server measures them (engine/quality/features.py): `marks` are the frames most likely to
 * need a correction (sudden IoU drops with the neighbours, area spikes, the object lost inside
 * its track, low model scores, jittery steps); `jitter` is the masklet's temporal jitter, the
 * RMS of its box edges' second difference over frames divided by the object's size.
 *
 * jitterLevel() .. markSpans() are pure (node tests); QualityMarks fetches and caches them.
 */

/** Jitter bands: below STEADY the track is smooth; above SHAKY a reviewer should look. */
export const JITTER_STEADY = 0.02;
export const JITTER_SHAKY = 0.06;

/** "steady" | "some" | "shaky" | "unknown" for a jitter value (null: not measurable). */
export function jitterLevel(jitter) {
  if (jitter === null || jitter === undefined || !Number.isFinite(jitter)) return "unknown";
  if (jitter < JITTER_STEADY) return "steady";
  if (jitter < JITTER_SHAKY) return "some";
  return "shaky";
}

/** The text shown to reviewers, e.g. "0.034 (some jitter)". */
export function jitterText(jitter) {
  const level = jitterLevel(jitter);
  if (level === "unknown") return "not measurable (fewer than 3 consecutive frames)";
  const words = { steady: "steady", some: "some jitter", shaky: "shaky" }[level];
  return `${jitter.toFixed(3)} (${words})`;
}

/**
 * The frames to mark: the API's `marks` that lie inside the video, sorted, unique.
 * @param {{marks?: number[]} | null | undefined} quality
 * @param {number} count frames in the video
 * @returns {number[]}
 */
export function markedFrames(quality, count) {
  const marks = quality && Array.isArray(quality.marks) ? quality.marks : [];
  const inside = marks.filter((i) => Number.isInteger(i) && i >= 0 && i < count);
  return [...new Set(inside)].sort((a, b) => a - b);
}

/** A cell's or tick's tooltip for a marked frame. */
export function markTitle(frame, quality) {
  const s = quality && quality.frame_suspicion ? quality.frame_suspicion[String(frame)] : null;
  const how = typeof s === "number" ? ` (suspicion ${Math.round(s * 100)}%)` : "";
  return `frame ${frame}: likely needs a correction${how}`;
}

/**
 * Pixel spans [x, width] of marked frames on a row `width` pixels wide showing `count` frames,
 * at least `minWidth` wide so a mark on a long video stays visible.
 */
export function markSpans(frames, count, width, minWidth = 2) {
  if (count <= 0 || width <= 0) return [];
  return frames.map((i) => {
    const x0 = (i * width) / count;
    const x1 = ((i + 1) * width) / count;
    return [Math.floor(x0), Math.max(minWidth, Math.round(x1 - x0))];
  });
}

/**
 * Fetches and caches each masklet's quality. `request(id, signature, onUpdate)` refetches only
 * when the signature (any summary of the masklet's frames) changed, after `delayMs` of quiet,
 * so a propagation writing frames one by one costs one request at its end.
 */
export class QualityMarks {
  /**
   * @param {(url: string) => Promise<any>} fetchJSON
   * @param {{delayMs?: number, draft?: boolean, setTimer?: Function, clearTimer?: Function}} options
   */
  constructor(fetchJSON, options = {}) {
    this.fetchJSON = fetchJSON;
    this.delayMs = options.delayMs ?? 800;
    this.draft = Boolean(options.draft);
    this.setTimer = options.setTimer || ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimer || ((t) => clearTimeout(t));
    this.entries = new Map(); // id -> {signature, quality, timer}
  }

  /** The last quality fetched for the masklet, or null. */
  get(id) {
    const entry = this.entries.get(id);
    return entry ? entry.quality : null;
  }

  url(id) {
    return `/api/masklets/${id}/quality/` + (this.draft ? "?draft=1" : "");
  }

  request(id, signature, onUpdate) {
    let entry = this.entries.get(id);
    if (!entry) {
      entry = { signature: null, quality: null, timer: null };
      this.entries.set(id, entry);
    }
    if (entry.signature === signature) return;
    entry.signature = signature;
    if (entry.timer !== null) this.clearTimer(entry.timer);
    entry.timer = this.setTimer(async () => {
      entry.timer = null;
      try {
        const quality = await this.fetchJSON(this.url(id));
        if (entry.signature !== signature) return; // a newer request is on its way
        entry.quality = quality;
        if (onUpdate) onUpdate(id, quality);
      } catch {
        // Marks are advice: a failed fetch leaves the timeline as it was.
      }
    }, this.delayMs);
  }

  forget(id) {
    const entry = this.entries.get(id);
    if (entry && entry.timer !== null) this.clearTimer(entry.timer);
    this.entries.delete(id);
  }
}
