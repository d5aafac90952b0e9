/*
 * Brush and eraser strokes rasterised into a row-major 0/1 mask, then sent as the frame's mask
 * after the stroke (compressed COCO RLE, lib/rle.js). Pure: node tests check the pixels.
 *
 * A stroke is a polyline of image points with a radius; pixel (x, y) covers [x, x+1) x [y, y+1)
 * and is painted when its centre lies within `radius` of the polyline (a chain of capsules).
 */
import { maskToRle } from "../lib/rle.js";

/** Distance squared from (px, py) to the segment (x0, y0)-(x1, y1). */
export function segmentDistance2(px, py, x0, y0, x1, y1) {
  const dx = x1 - x0;
  const dy = y1 - y0;
  const len2 = dx * dx + dy * dy;
  let t = len2 > 0 ? ((px - x0) * dx + (py - y0) * dy) / len2 : 0;
  t = Math.max(0, Math.min(1, t));
  const ex = x0 + t * dx - px;
  const ey = y0 + t * dy - py;
  return ex * ex + ey * ey;
}

/**
 * Paint one capsule (a segment with round ends) into `mask` in place.
 * @param {Uint8Array} mask row-major, width*height
 * @param {number} value 1 (brush) or 0 (eraser)
 * @returns {number} how many pixels changed
 */
export function paintSegment(mask, width, height, x0, y0, x1, y1, radius, value) {
  const r = Math.max(0.5, radius);
  const r2 = r * r;
  const xa = Math.max(0, Math.floor(Math.min(x0, x1) - r));
  const xb = Math.min(width - 1, Math.ceil(Math.max(x0, x1) + r));
  const ya = Math.max(0, Math.floor(Math.min(y0, y1) - r));
  const yb = Math.min(height - 1, Math.ceil(Math.max(y0, y1) + r));
  let changed = 0;
  for (let y = ya; y <= yb; y++) {
    for (let x = xa; x <= xb; x++) {
      if (segmentDistance2(x + 0.5, y + 0.5, x0, y0, x1, y1) > r2) continue;
      const k = y * width + x;
      if (mask[k] !== value) {
        mask[k] = value;
        changed += 1;
      }
    }
  }
  return changed;
}

/**
 * The mask after a stroke: a copy of `base` (or an empty mask) with the polyline painted.
 * @param {Uint8Array | null | undefined} base the frame's mask before the stroke
 * @param {number[][]} points [[x, y], ...] image coordinates; one point paints a disc
 * @param {boolean} erase eraser (0) instead of brush (1)
 * @returns {Uint8Array}
 */
export function applyStroke(base, width, height, points, radius, erase = false) {
  const mask = base ? Uint8Array.from(base) : new Uint8Array(width * height);
  const value = erase ? 0 : 1;
  if (!points.length) return mask;
  if (points.length === 1) {
    const [x, y] = points[0];
    paintSegment(mask, width, height, x, y, x, y, radius, value);
  }
  for (let i = 1; i < points.length; i++) {
    const [x0, y0] = points[i - 1];
    const [x1, y1] = points[i];
    paintSegment(mask, width, height, x0, y0, x1, y1, radius, value);
  }
  return mask;
}

/** Whether two masks differ (a stroke that changed nothing is not saved). */
export function masksDiffer(a, b, length) {
  for (let k = 0; k < length; k++) if ((a ? a[k] : 0) !== (b ? b[k] : 0)) return true;
  return false;
}

/**
 * The draft edit of a stroke: the frame's whole mask after it, as compressed COCO RLE.
 * @returns {{mask: Uint8Array, edit: {frame_index: number, tool: string, rle: object, prompt: null}}}
 */
export function strokeEdit(base, width, height, frameIndex, points, radius, tool) {
  const mask = applyStroke(base, width, height, points, radius, tool === "eraser");
  return {
    mask,
    edit: { frame_index: frameIndex, tool, rle: maskToRle(mask, height, width), prompt: null },
  };
}
