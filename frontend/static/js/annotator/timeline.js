/*
 * The timeline: one row per object showing, per frame, whether the object is present, absent
 * or not annotated, which frames carry a prompt and which were edited by hand; a click jumps
 * to the frame. Rows are drawn on small canvases bucketed to the row's pixel width, so a
 * 1,000-frame video costs one canvas per object, not a thousand elements (and no frame images:
 * the video has one thumbnail, not one per frame).
 *
 * presence() .. bucketize() are pure (node tests); TimelineView draws them. Frames the quality
 * estimator suggests checking (lib/quality_marks.js, measured on the draft) get a magenta mark.
 */
import { getJSON } from "../lib/api.js";
import { QualityMarks, markSpans, markedFrames } from "../lib/quality_marks.js";
import { rleArea } from "../lib/rle.js";

export const NOT_ANNOTATED = 0;
export const ABSENT = 1;
export const PRESENT = 2;

/**
 * Per-frame states from a draft's frames ({"<index>": RLE | null}); an empty mask is absent.
 * @param {Record<string, any> | Map<number, any>} frames
 * @param {number} count frames in the video
 * @returns {Uint8Array}
 */
export function presence(frames, count) {
  const states = new Uint8Array(Math.max(0, count));
  const entries = frames instanceof Map ? frames.entries() : Object.entries(frames);
  for (const [key, rle] of entries) {
    const i = Number(key);
    if (!Number.isInteger(i) || i < 0 || i >= count) continue;
    states[i] = rle && rleArea(rle) > 0 ? PRESENT : ABSENT;
  }
  return states;
}

/** Runs of equal states: [{start, end (exclusive), state}], in order. */
export function runs(states) {
  const out = [];
  let start = 0;
  for (let i = 1; i <= states.length; i++) {
    if (i === states.length || states[i] !== states[start]) {
      out.push({ start, end: i, state: states[start] });
      start = i;
    }
  }
  return out;
}

/** Frames with a saved prompt (click, box or mask prompt) in a draft's prompt log. */
export function promptedFrames(prompts) {
  const frames = new Set();
  for (const p of prompts || []) if (Number.isInteger(p.frame_index)) frames.add(p.frame_index);
  return frames;
}

/**
 * States reduced to `buckets` columns for drawing: a column shows PRESENT if any of its frames
 * is present, else ABSENT if any is, else NOT_ANNOTATED (presence is never hidden by zooming
 * out). With more columns than frames, each frame spans several columns.
 * @returns {Uint8Array}
 */
export function bucketize(states, buckets) {
  const n = states.length;
  const out = new Uint8Array(Math.max(0, buckets));
  if (!n) return out;
  for (let b = 0; b < buckets; b++) {
    const first = Math.floor((b * n) / buckets);
    const last = Math.max(first, Math.ceil(((b + 1) * n) / buckets) - 1);
    let best = NOT_ANNOTATED;
    for (let i = first; i <= last && i < n; i++) if (states[i] > best) best = states[i];
    out[b] = best;
  }
  return out;
}

/** The frame under x (CSS pixels) of a row `width` wide showing `count` frames. */
export function frameAtX(x, width, count) {
  if (count <= 0 || width <= 0) return 0;
  return Math.min(count - 1, Math.max(0, Math.floor((x / width) * count)));
}

/** The x span [x0, x1) of frame `i` in a row `width` wide. */
export function frameSpan(i, width, count) {
  return [(i * width) / count, ((i + 1) * width) / count];
}

const COLOURS = { [ABSENT]: "#d0d5dd", [PRESENT]: null };
const SUSPECT_COLOUR = "rgba(193, 21, 116, 0.85)";

/** A summary of an object's frames: the quality marks are refetched when it changes. */
export function framesSignature(obj) {
  const present = obj.states.filter((s) => s === PRESENT).length;
  const annotated = obj.states.filter((s) => s !== NOT_ANNOTATED).length;
  return `${present}/${annotated}/${obj.edited.size}/${obj.prompted.size}`;
}

/** Draws the per-object rows into a container; the caller supplies the data on render(). */
export class TimelineView {
  constructor(container, count, onSeek) {
    this.container = container;
    this.count = count;
    this.onSeek = onSeek;
    this.rows = new Map(); // masklet id -> {row, canvas, label}
    this.quality = new QualityMarks(getJSON, { draft: true });
    this.last = null; // the last render's objects and cursor, to redraw when marks arrive
  }

  /** @param {{id: number, name: string, colour: string, states: Uint8Array, prompted: Set<number>,
   *   edited: Set<number>, selected: boolean, hidden: boolean}[]} objects */
  render(objects, cursor) {
    this.last = { objects, cursor };
    const keep = new Set(objects.map((o) => o.id));
    for (const [id, entry] of this.rows) {
      if (!keep.has(id)) {
        entry.row.remove();
        this.rows.delete(id);
        this.quality.forget(id);
      }
    }
    for (const obj of objects) {
      const entry = this.rows.get(obj.id) || this.makeRow(obj.id);
      this.container.appendChild(entry.row); // keeps the object list's order
      entry.label.textContent = obj.name;
      entry.label.style.borderLeftColor = obj.colour;
      entry.row.classList.toggle("selected", obj.selected);
      entry.row.classList.toggle("hidden-object", obj.hidden);
      entry.row.dataset.present = String(obj.states.filter((s) => s === PRESENT).length);
      entry.row.dataset.annotated = String(obj.states.filter((s) => s !== NOT_ANNOTATED).length);
      entry.row.dataset.prompted = [...obj.prompted].sort((a, b) => a - b).join(",");
      entry.row.dataset.edited = [...obj.edited].sort((a, b) => a - b).join(",");
      const suspect = markedFrames(this.quality.get(obj.id), this.count);
      entry.row.dataset.suspect = suspect.join(",");
      this.drawRow(entry.canvas, obj, cursor, suspect);
      this.quality.request(obj.id, framesSignature(obj), () => {
        if (this.last) this.render(this.last.objects, this.last.cursor);
      });
    }
  }

  makeRow(id) {
    const row = document.createElement("div");
    row.className = "tl-row";
    row.dataset.masklet = String(id);
    const label = document.createElement("span");
    label.className = "tl-label";
    const canvas = document.createElement("canvas");
    canvas.className = "tl-canvas";
    canvas.height = 18;
    canvas.addEventListener("pointerdown", (e) => {
      const seek = (ev) => this.onSeek(frameAtX(ev.offsetX, canvas.clientWidth, this.count), id);
      seek(e);
      canvas.setPointerCapture(e.pointerId);
      canvas.onpointermove = seek;
      canvas.onpointerup = () => {
        canvas.onpointermove = null;
      };
    });
    row.append(label, canvas);
    const entry = { row, canvas, label };
    this.rows.set(id, entry);
    return entry;
  }

  drawRow(canvas, obj, cursor, suspect = []) {
    const width = Math.max(1, Math.round(canvas.clientWidth || 600));
    if (canvas.width !== width) canvas.width = width;
    const height = canvas.height;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    const cols = bucketize(obj.states, width);
    let start = 0;
    for (let x = 1; x <= width; x++) {
      if (x < width && cols[x] === cols[start]) continue;
      const state = cols[start];
      if (state !== NOT_ANNOTATED) {
        ctx.fillStyle = state === PRESENT ? obj.colour : COLOURS[ABSENT];
        ctx.fillRect(start, 4, x - start, height - 8);
      }
      start = x;
    }
    const tick = (frames, colour, y, h) => {
      ctx.fillStyle = colour;
      for (const i of frames) {
        const [x0, x1] = frameSpan(i, width, this.count);
        ctx.fillRect(Math.floor(x0), y, Math.max(2, Math.round(x1 - x0)), h);
      }
    };
    // Frames to check: a full-height line under the cursor and the ticks.
    ctx.fillStyle = SUSPECT_COLOUR;
    for (const [x, w] of markSpans(suspect, this.count, width)) ctx.fillRect(x, 0, w, height);
    // The cursor first: the prompted and edited ticks stay visible on the current frame.
    const [c0, c1] = frameSpan(cursor, width, this.count);
    ctx.strokeStyle = "#d92d20";
    ctx.lineWidth = 2;
    ctx.strokeRect(Math.floor(c0) + 1, 1, Math.max(2, Math.round(c1 - c0)) - 1, height - 2);
    tick(obj.edited, "#f79009", height - 4, 4);
    tick(obj.prompted, "#1d2330", 0, 4);
  }
}
