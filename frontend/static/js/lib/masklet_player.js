/*
 * Masklet player shared by the review and fix pages (the markup is review/_player.html).
 *
 * The page embeds the masklet as JSON (json_script "review-data"): video size and frame count,
 * the URL prefix of the decoded JPEG frames, per-frame COCO compressed RLE masks (null = object
 * absent), the revisions that set each frame, and the verdict history. Masks are decoded here, in
 * the browser, and drawn as a translucent overlay on a canvas.
 */
import { FrameCache } from "./frame_cache.js";
import { maskArea, rleToMask } from "./rle.js";

const OVERLAY_RGB = [30, 144, 255];
const OVERLAY_ALPHA = 0.5;
const PREFETCH_AHEAD = 3; // playback must not stall on the network
const PREFETCH_BEHIND = 1; // stepping back with the arrow key

/**
 * The value of a {{ value|json_script:"id" }} element, or null when the page has none.
 * @param {string} id
 */
export function pageData(id) {
  const source = document.getElementById(id);
  return source ? JSON.parse(source.textContent) : null;
}

export class MaskletPlayer {
  constructor(data) {
    this.data = data;
    this.video = data.video;
    this.width = data.video.width;
    this.height = data.video.height;
    this.count = Math.max(1, data.video.frame_count);
    this.canvas = document.getElementById("frame-canvas");
    this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
    this.masks = new Map(); // frame -> Uint8Array | null, decoded lazily or edited locally
    this.frames = new FrameCache({ capacity: 48 });
    this.flagged = new Map(); // frame -> note
    this.edited = new Set(); // frames changed on this page (fix page)
    this.suspect = new Map(); // frame -> title: frames the quality estimator suggests checking
    this.listeners = [];
    this.speed = 1;
    this.timer = null;
    this.overlay = true;
    this.drawToken = 0;
    this.currentImage = null;
    const annotated = Object.keys(data.frames).map(Number).sort((a, b) => a - b);
    this.frame = annotated.length ? annotated[0] : 0;
    this.bindControls();
    this.buildTimeline();
    this.show(this.frame);
  }

  annotated(i) {
    return Object.prototype.hasOwnProperty.call(this.data.frames, String(i));
  }

  /** The frame's mask: Uint8Array, null (object absent) or undefined (never annotated). */
  mask(i) {
    if (this.masks.has(i)) return this.masks.get(i);
    if (!this.annotated(i)) return undefined;
    const rle = this.data.frames[String(i)];
    const mask = rle ? rleToMask(rle) : null;
    this.masks.set(i, mask);
    return mask;
  }

  maskArea(i) {
    const mask = this.mask(i);
    return mask ? maskArea(mask) : 0;
  }

  frameUrl(i) {
    return this.video.frame_url_prefix + String(i).padStart(6, "0") + ".jpg";
  }

  /** @returns {Promise<HTMLImageElement | null>} */
  image(i) {
    return this.frames.get(this.frameUrl(i));
  }

  async show(i) {
    const frame = Math.min(this.count - 1, Math.max(0, i));
    this.frame = frame;
    const token = ++this.drawToken;
    const img = await this.image(frame);
    if (token !== this.drawToken) return;
    this.currentImage = img;
    this.draw();
    this.updateTimeline();
    this.updateInfo();
    this.canvas.dataset.frame = String(frame);
    for (const fn of this.listeners) fn(frame);
    this.frames.prefetchAround(frame, (k) => this.frameUrl(k), {
      count: this.count,
      ahead: PREFETCH_AHEAD,
      behind: PREFETCH_BEHIND,
    });
  }

  draw() {
    const ctx = this.ctx;
    if (this.currentImage) {
      ctx.drawImage(this.currentImage, 0, 0, this.width, this.height);
    } else {
      ctx.fillStyle = "#222";
      ctx.fillRect(0, 0, this.width, this.height);
    }
    const mask = this.mask(this.frame);
    if (!this.overlay || !mask) return;
    const pixels = ctx.getImageData(0, 0, this.width, this.height);
    const rgba = pixels.data;
    for (let k = 0; k < mask.length; k++) {
      if (!mask[k]) continue;
      const o = 4 * k;
      for (let c = 0; c < 3; c++) {
        rgba[o + c] = Math.round(rgba[o + c] * (1 - OVERLAY_ALPHA) + OVERLAY_RGB[c] * OVERLAY_ALPHA);
      }
    }
    ctx.putImageData(pixels, 0, 0);
  }

  onFrame(fn) {
    this.listeners.push(fn);
  }

  play() {
    if (this.timer !== null) return;
    if (this.frame >= this.count - 1) this.show(0);
    document.getElementById("play").textContent = "Pause";
    const tick = async () => {
      if (this.frame >= this.count - 1) {
        this.pause();
        return;
      }
      await this.show(this.frame + 1);
      if (this.timer !== null) this.timer = setTimeout(tick, this.interval());
    };
    this.timer = setTimeout(tick, this.interval());
  }

  pause() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    document.getElementById("play").textContent = "Play";
  }

  interval() {
    const fps = this.video.fps > 0 ? this.video.fps : 6;
    return 1000 / (fps * this.speed);
  }

  step(delta) {
    this.pause();
    this.show(this.frame + delta);
  }

  bindControls() {
    document.getElementById("prev").addEventListener("click", () => this.step(-1));
    document.getElementById("next").addEventListener("click", () => this.step(1));
    document.getElementById("play").addEventListener("click", () => {
      if (this.timer === null) this.play();
      else this.pause();
    });
    document.getElementById("speed").addEventListener("change", (e) => {
      this.speed = Number(e.target.value) || 1;
    });
    document.getElementById("overlay-toggle").addEventListener("change", (e) => {
      this.overlay = e.target.checked;
      this.draw();
    });
    document.addEventListener("keydown", (e) => {
      if (e.target.closest && e.target.closest("textarea, input, select")) return;
      if (e.key === "ArrowLeft") this.step(-1);
      else if (e.key === "ArrowRight") this.step(1);
      else if (e.key === " ") {
        e.preventDefault();
        if (this.timer === null) this.play();
        else this.pause();
      }
    });
  }

  buildTimeline() {
    const timeline = document.getElementById("timeline");
    timeline.textContent = "";
    this.cells = [];
    for (let i = 0; i < this.count; i++) {
      const cell = document.createElement("button");
      cell.type = "button";
      cell.className = "cell";
      cell.dataset.frame = String(i);
      cell.addEventListener("click", () => {
        this.pause();
        this.show(i);
      });
      timeline.appendChild(cell);
      this.cells.push(cell);
    }
  }

  editsOf(i) {
    return this.data.edits[String(i)] || [];
  }

  /** Fill `list` with one link per flagged frame (jumping there) and its note. */
  renderFlagList(list) {
    list.textContent = "";
    [...this.flagged.keys()].sort((a, b) => a - b).forEach((frame) => {
      const li = document.createElement("li");
      li.dataset.frame = String(frame);
      const link = document.createElement("a");
      link.href = "#";
      link.textContent = `frame ${frame}`;
      link.addEventListener("click", (e) => {
        e.preventDefault();
        this.pause();
        this.show(frame);
      });
      li.appendChild(link);
      const note = this.flagged.get(frame);
      if (note) li.appendChild(document.createTextNode(`: ${note}`));
      list.appendChild(li);
    });
  }

  updateTimeline() {
    for (let i = 0; i < this.cells.length; i++) {
      const cell = this.cells[i];
      const annotated = this.annotated(i) || this.edited.has(i);
      const classes = ["cell"];
      if (annotated) classes.push(this.mask(i) === null ? "absent" : "annotated");
      if (this.editsOf(i).length > 1 || this.edited.has(i)) classes.push("edited");
      if (this.flagged.has(i)) classes.push("flagged");
      if (this.suspect.has(i)) classes.push("suspect");
      if (i === this.frame) classes.push("current");
      cell.className = classes.join(" ");
      const edits = this.editsOf(i).map((e) => `r${e.revision_number} ${e.author || "auto"}`);
      cell.title = `frame ${i}` + (edits.length ? ` · ${edits.join(", ")}` : "") +
        (this.flagged.has(i) ? " · flagged" : "") +
        (this.suspect.has(i) ? ` · ${this.suspect.get(i)}` : "");
    }
  }

  updateInfo() {
    const i = this.frame;
    document.getElementById("frame-label").textContent = `Frame ${i} / ${this.count - 1}`;
    const info = document.getElementById("frame-info");
    info.textContent = "";
    const head = document.createElement("div");
    const mask = this.mask(i);
    head.textContent = mask === undefined ? `Frame ${i}: not annotated.`
      : mask === null ? `Frame ${i}: object absent.`
        : `Frame ${i}: mask of ${this.maskArea(i)} pixels.`;
    info.appendChild(head);
    const list = document.createElement("ul");
    list.className = "edits";
    this.editsOf(i).forEach((e, n) => {
      const li = document.createElement("li");
      const verb = n === 0 ? "set" : "edited";
      li.textContent = `${verb} in revision ${e.revision_number} by ${e.author || "(automatic)"}` +
        ` (${e.source}), ${e.created_at.slice(0, 19).replace("T", " ")}`;
      list.appendChild(li);
    });
    if (this.edited.has(i)) {
      const li = document.createElement("li");
      li.textContent = "changed on this page (not saved yet)";
      list.appendChild(li);
    }
    info.appendChild(list);
    if (this.flagged.has(i)) {
      const note = document.createElement("div");
      note.className = "flag-note";
      note.textContent = "Flagged" + (this.flagged.get(i) ? `: ${this.flagged.get(i)}` : "");
      info.appendChild(note);
    }
  }
}
