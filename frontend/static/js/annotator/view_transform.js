/*
 * The stage's view transform: image pixels -> screen (canvas CSS) pixels, as a uniform scale
 * and a translation. Zoom keeps the image point under the pointer fixed; pan moves by screen
 * pixels. Pure arithmetic (no DOM), so node tests check it.
 *
 *   screen = image * scale + (tx, ty)        image = (screen - (tx, ty)) / scale
 */

export const MIN_SCALE = 0.05;
export const MAX_SCALE = 40;

export class ViewTransform {
  constructor({ scale = 1, tx = 0, ty = 0, minScale = MIN_SCALE, maxScale = MAX_SCALE } = {}) {
    this.scale = scale;
    this.tx = tx;
    this.ty = ty;
    this.minScale = minScale;
    this.maxScale = maxScale;
  }

  /** Image coordinates of a screen point. @returns {[number, number]} */
  toImage(sx, sy) {
    return [(sx - this.tx) / this.scale, (sy - this.ty) / this.scale];
  }

  /** Screen coordinates of an image point. @returns {[number, number]} */
  toScreen(ix, iy) {
    return [ix * this.scale + this.tx, iy * this.scale + this.ty];
  }

  /** Multiply the scale by `factor` (clamped), keeping the image point under (sx, sy) there. */
  zoomAt(factor, sx, sy) {
    const [ix, iy] = this.toImage(sx, sy);
    const scale = Math.min(this.maxScale, Math.max(this.minScale, this.scale * factor));
    this.scale = scale;
    this.tx = sx - ix * scale;
    this.ty = sy - iy * scale;
    return this;
  }

  panBy(dx, dy) {
    this.tx += dx;
    this.ty += dy;
    return this;
  }

  /** Show the whole image centred in a view of viewW x viewH, with `margin` screen pixels. */
  fit(imageW, imageH, viewW, viewH, margin = 8) {
    const w = Math.max(1, viewW - 2 * margin);
    const h = Math.max(1, viewH - 2 * margin);
    const scale = Math.min(w / Math.max(1, imageW), h / Math.max(1, imageH));
    this.scale = Math.min(this.maxScale, Math.max(this.minScale, scale));
    this.tx = (viewW - imageW * this.scale) / 2;
    this.ty = (viewH - imageH * this.scale) / 2;
    return this;
  }

  /** The 2D context transform (a, b, c, d, e, f) for drawing in image coordinates. */
  matrix() {
    return [this.scale, 0, 0, this.scale, this.tx, this.ty];
  }
}

/** The zoom factor of one wheel event: smooth for trackpads, one notch ~ 15% for mice. */
export function wheelZoomFactor(deltaY, deltaMode = 0) {
  const pixels = deltaMode === 1 ? deltaY * 16 : deltaMode === 2 ? deltaY * 400 : deltaY;
  const clamped = Math.max(-300, Math.min(300, pixels));
  return Math.exp(-clamped * 0.0015);
}

/** Whether an image point lies on the frame (the server refuses prompts outside it). */
export function insideImage(x, y, width, height) {
  return Number.isFinite(x) && Number.isFinite(y) && x >= 0 && y >= 0 && x <= width && y <= height;
}

/** A point clamped onto the frame. @returns {[number, number]} */
export function clampToImage(x, y, width, height) {
  return [Math.min(width, Math.max(0, x)), Math.min(height, Math.max(0, y))];
}
