/*
 * The timeline's film strip and hover preview, made of thumbnails (at most 160x120, a few KB,
 * /videos/<id>/thumbs/<i>.jpg), never full frames: the strip shows as many evenly spaced
 * thumbnails as fit its width (a 1,000-frame video costs ~20 small requests, not 1,000 frames),
 * and hovering over the strip or the scrubber shows the hovered frame's thumbnail, loaded
 * latest-only. Clicking the strip seeks.
 *
 * stripFrames() is pure (node tests); TimelineStrip draws.
 */
import { FrameCache } from "../lib/frame_cache.js";

const PREVIEW_CACHE = 48; // hover thumbnails kept

/**
 * The frames a strip of `slots` thumbnails shows for a video of `count` frames: the middle
 * frame of each equal share, ascending, without repeats.
 * @returns {number[]}
 */
export function stripFrames(count, slots) {
  const n = Math.max(0, Math.min(count, Math.floor(slots)));
  const frames = [];
  for (let k = 0; k < n; k++) {
    const f = Math.min(count - 1, Math.floor(((k + 0.5) * count) / n));
    if (!frames.length || frames[frames.length - 1] !== f) frames.push(f);
  }
  return frames;
}

/** Thumbnails that fit a strip `width` CSS pixels wide and `height` high, for frames of
 * aspect `aspect` (width / height): at least one. */
export function stripSlots(width, height, aspect) {
  const thumbWidth = Math.max(8, height * (aspect > 0 ? aspect : 4 / 3));
  return Math.max(1, Math.floor(width / thumbWidth));
}

export class TimelineStrip {
  /**
   * @param {{canvas: HTMLCanvasElement, preview: HTMLElement, scrubber: HTMLInputElement,
   *   count: number, aspect: number, thumbUrl: (i: number) => string,
   *   onSeek: (i: number) => void}} o
   */
  constructor({ canvas, preview, scrubber, count, aspect, thumbUrl, onSeek }) {
    this.canvas = canvas;
    this.preview = preview;
    this.count = count;
    this.aspect = aspect;
    this.thumbUrl = thumbUrl;
    this.onSeek = onSeek;
    this.cache = new FrameCache({ capacity: PREVIEW_CACHE });
    this.frames = [];
    this.hoverToken = 0;
    this.hoverLoading = false; // a hover thumbnail is loading
    this.hoverNext = null; // the latest hover waiting for it
    this.drawn = null;
    const frameAt = (x, width) =>
      Math.min(count - 1, Math.max(0, Math.floor((x / Math.max(1, width)) * count)));
    canvas.addEventListener("pointerdown", (e) => onSeek(frameAt(e.offsetX, canvas.clientWidth)));
    canvas.addEventListener("pointermove", (e) => {
      this.hover(frameAt(e.offsetX, canvas.clientWidth), e.clientX, canvas);
    });
    canvas.addEventListener("pointerleave", () => this.hideHover());
    if (scrubber) {
      scrubber.addEventListener("pointermove", (e) => {
        if (e.buttons !== 0) {
          // dragging: the stage shows the frames themselves; no preview requests meanwhile
          this.hideHover();
          return;
        }
        const rect = scrubber.getBoundingClientRect();
        this.hover(frameAt(e.clientX - rect.left, rect.width), e.clientX, scrubber);
      });
      scrubber.addEventListener("pointerleave", () => this.hideHover());
    }
    new ResizeObserver(() => this.draw()).observe(canvas);
    this.draw();
  }

  /** Lay the strip out for its width and draw each thumbnail as it arrives. */
  draw() {
    const width = Math.max(1, Math.round(this.canvas.clientWidth || 600));
    const height = Math.max(1, Math.round(this.canvas.clientHeight || 36));
    const frames = stripFrames(this.count, stripSlots(width, height, this.aspect));
    const layout = `${width}x${height}:${frames.join(",")}`;
    if (layout === this.drawn) return;
    this.drawn = layout;
    this.frames = frames;
    this.canvas.width = width;
    this.canvas.height = height;
    this.canvas.dataset.frames = frames.join(",");
    const ctx = this.canvas.getContext("2d");
    ctx.fillStyle = "#1d2330";
    ctx.fillRect(0, 0, width, height);
    const slot = width / Math.max(1, frames.length);
    frames.forEach((f, k) => {
      this.cache.get(this.thumbUrl(f)).then((img) => {
        if (!img || this.drawn !== layout) return;
        // Fit the thumbnail into its slot, aspect kept, centred.
        const scale = Math.min(slot / img.width, height / img.height);
        const w = img.width * scale;
        const h = img.height * scale;
        ctx.drawImage(img, k * slot + (slot - w) / 2, (height - h) / 2, w, h);
      });
    });
  }

  /** Show frame `i`'s thumbnail above the strip or scrubber, at the pointer's x. One
   * thumbnail loads at a time: moving on while it loads asks for the latest frame only. */
  async hover(i, clientX, anchor) {
    const token = ++this.hoverToken;
    const box = this.preview;
    const rect = anchor.getBoundingClientRect();
    box.style.left = `${Math.max(0, clientX - 80 + window.scrollX)}px`;
    box.style.top = `${rect.top + window.scrollY - 8}px`;
    box.querySelector(".tl-preview-label").textContent = `Frame ${i}`;
    box.hidden = false;
    box.dataset.frame = String(i);
    const url = this.thumbUrl(i);
    if (!this.cache.has(url) && this.hoverLoading) {
      this.hoverNext = () => this.hover(i, clientX, anchor);
      return;
    }
    this.hoverLoading = !this.cache.has(url);
    const img = await this.cache.get(url);
    this.hoverLoading = false;
    const next = this.hoverNext;
    this.hoverNext = null;
    if (next && token !== this.hoverToken) {
      next();
      return;
    }
    if (token !== this.hoverToken || !img) return;
    const canvas = box.querySelector("canvas");
    canvas.width = img.width;
    canvas.height = img.height;
    canvas.getContext("2d").drawImage(img, 0, 0);
  }

  hideHover() {
    this.hoverToken += 1;
    this.hoverNext = null;
    this.preview.hidden = true;
  }
}
