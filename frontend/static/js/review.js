/*
 * Masklet player for the review and fix pages, and the reviewer's flag / verdict controls.
 *
 * The page embeds the masklet as JSON (#review-data): video size and frame count, the URL prefix
 * of the decoded JPEG frames, per-frame COCO compressed RLE masks (null = object absent), the
 * revisions that set each frame, and the verdict history. Masks are decoded here, in the
 * browser, and drawn as a translucent overlay on a canvas.
 */
(function () {
  "use strict";

  const OVERLAY_RGB = [30, 144, 255];
  const OVERLAY_ALPHA = 0.5;

  /**
   * Run lengths of a COCO compressed RLE string (the "counts" field).
   * Each number is a little-endian base-32 varint written as chars from '0' (48); 0x20 marks
   * "more chunks follow", 0x10 in the last chunk is the sign. From the third run on, numbers
   * are stored as the difference to the run two places back.
   */
  function decodeCounts(text) {
    const counts = [];
    let pos = 0;
    while (pos < text.length) {
      let value = 0;
      let chunk = 0;
      let more = true;
      while (more) {
        const c = text.charCodeAt(pos) - 48;
        value += (c & 0x1f) * Math.pow(32, chunk);
        more = (c & 0x20) !== 0;
        pos += 1;
        chunk += 1;
        if (!more && (c & 0x10) !== 0) value -= Math.pow(32, chunk);
      }
      if (counts.length > 2) value += counts[counts.length - 2];
      counts.push(value);
    }
    return counts;
  }

  /** Decode an RLE ({size: [H, W], counts}) into a row-major Uint8Array of H*W 0/1 values. */
  function rleToMask(rle) {
    const height = rle.size[0];
    const width = rle.size[1];
    const counts = typeof rle.counts === "string" ? decodeCounts(rle.counts) : rle.counts;
    const mask = new Uint8Array(height * width);
    let index = 0; // column-major position
    let on = 0;
    for (const run of counts) {
      if (on) {
        for (let k = index; k < index + run; k++) {
          const col = Math.floor(k / height);
          mask[(k - col * height) * width + col] = 1;
        }
      }
      index += run;
      on ^= 1;
    }
    return mask;
  }

  /** Uncompressed COCO RLE counts (column-major runs, background first) of a row-major mask. */
  function maskToCounts(mask, height, width) {
    const counts = [];
    let current = 0;
    let run = 0;
    for (let col = 0; col < width; col++) {
      for (let row = 0; row < height; row++) {
        const v = mask[row * width + col] ? 1 : 0;
        if (v !== current) {
          counts.push(run);
          current = v;
          run = 0;
        }
        run += 1;
      }
    }
    counts.push(run);
    return counts;
  }

  class MaskletPlayer {
    constructor(data) {
      this.data = data;
      this.video = data.video;
      this.width = data.video.width;
      this.height = data.video.height;
      this.count = Math.max(1, data.video.frame_count);
      this.canvas = document.getElementById("frame-canvas");
      this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
      this.masks = new Map(); // frame -> Uint8Array | null, decoded lazily or edited locally
      this.images = new Map(); // frame -> Promise<HTMLImageElement | null>
      this.flagged = new Map(); // frame -> note
      this.edited = new Set(); // frames changed on this page (fix page)
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
      if (!mask) return 0;
      let area = 0;
      for (let k = 0; k < mask.length; k++) area += mask[k];
      return area;
    }

    frameUrl(i) {
      return this.video.frame_url_prefix + String(i).padStart(6, "0") + ".jpg";
    }

    image(i) {
      if (!this.images.has(i)) {
        this.images.set(i, new Promise((resolve) => {
          const img = new Image();
          img.onload = () => resolve(img);
          img.onerror = () => resolve(null);
          img.src = this.frameUrl(i);
        }));
      }
      return this.images.get(i);
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
      // Warm the next frames so playback does not stall on the network.
      for (let k = 1; k <= 3 && frame + k < this.count; k++) this.image(frame + k);
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
        if (i === this.frame) classes.push("current");
        cell.className = classes.join(" ");
        const edits = this.editsOf(i).map((e) => `r${e.revision_number} ${e.author || "auto"}`);
        cell.title = `frame ${i}` + (edits.length ? ` · ${edits.join(", ")}` : "") +
          (this.flagged.has(i) ? " · flagged" : "");
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

  /** Reviewer controls: flag frames with notes, fill the verdict form. */
  function setupReview(player) {
    const toggle = document.getElementById("flag-toggle");
    const note = document.getElementById("flag-note");
    const list = document.getElementById("flagged-list");
    const form = document.getElementById("review-form");

    function render() {
      const flagged = player.flagged.has(player.frame);
      toggle.textContent = flagged ? "Unflag this frame" : "Flag this frame";
      note.disabled = !flagged;
      note.value = flagged ? player.flagged.get(player.frame) : "";
      player.renderFlagList(list);
      player.updateTimeline();
    }

    toggle.addEventListener("click", () => {
      if (player.flagged.has(player.frame)) player.flagged.delete(player.frame);
      else player.flagged.set(player.frame, "");
      render();
      player.updateInfo();
      if (player.flagged.has(player.frame)) note.focus();
    });
    note.addEventListener("input", () => {
      if (player.flagged.has(player.frame)) {
        player.flagged.set(player.frame, note.value);
        render();
      }
    });
    player.onFrame(render);
    form.addEventListener("submit", () => {
      const frames = [...player.flagged.keys()].sort((a, b) => a - b);
      const notes = {};
      for (const frame of frames) {
        const text = player.flagged.get(frame).trim();
        if (text) notes[String(frame)] = text;
      }
      document.getElementById("flagged-frames-field").value = JSON.stringify(frames);
      document.getElementById("frame-notes-field").value = JSON.stringify(notes);
    });
    render();
  }

  window.maskletRle = { decodeCounts, rleToMask, maskToCounts };
  window.MaskletPlayer = MaskletPlayer;

  document.addEventListener("DOMContentLoaded", () => {
    const source = document.getElementById("review-data");
    if (!source) return;
    const player = new MaskletPlayer(JSON.parse(source.textContent));
    window.reviewPlayer = player;
    if (document.getElementById("review-form")) setupReview(player);
    document.dispatchEvent(new CustomEvent("masklet-player-ready", { detail: player }));
  });
})();
