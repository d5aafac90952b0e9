/*
 * The stage: four stacked canvases (frame, masks, prompts, cursor) sharing one view transform.
 * Each layer is redrawn on its own, so moving the brush cursor never redraws the frame, and
 * a new mask never redraws the prompts. Canvases are sized to the stage in CSS pixels.
 */
import { ViewTransform } from "./view_transform.js";

const MASK_ALPHA = 0.45;
const SELECTED_ALPHA = 0.6;
const BITMAP_CACHE = 96; // coloured mask bitmaps kept (one per object and frame)

/** "#rrggbb" -> [r, g, b]. */
export function hexToRgb(hex) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "");
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [30, 144, 255];
}

export class Stage {
  constructor(root, width, height) {
    this.root = root;
    this.width = width;
    this.height = height;
    this.layers = {
      frame: root.querySelector("#layer-frame"),
      masks: root.querySelector("#layer-masks"),
      prompts: root.querySelector("#layer-prompts"),
      cursor: root.querySelector("#layer-cursor"),
    };
    this.ctx = {};
    for (const [name, canvas] of Object.entries(this.layers)) this.ctx[name] = canvas.getContext("2d");
    this.view = new ViewTransform();
    this.userMoved = false; // zoomed or panned: a resize keeps the view
    this.bitmaps = new Map();
    this.redraw = () => {};
    this.resize();
    new ResizeObserver(() => this.resize()).observe(root);
  }

  resize() {
    const w = Math.max(1, Math.round(this.root.clientWidth));
    const h = Math.max(1, Math.round(this.root.clientHeight));
    for (const canvas of Object.values(this.layers)) {
      if (canvas.width !== w) canvas.width = w;
      if (canvas.height !== h) canvas.height = h;
    }
    if (!this.userMoved) this.view.fit(this.width, this.height, w, h);
    this.redraw();
  }

  fit() {
    this.userMoved = false;
    this.resize();
  }

  /** Image coordinates of a pointer event on the stage. */
  eventToImage(event) {
    const rect = this.layers.cursor.getBoundingClientRect();
    return this.view.toImage(event.clientX - rect.left, event.clientY - rect.top);
  }

  /** Client (page) coordinates of an image point: tests move the mouse with it. */
  imageToClient(x, y) {
    const rect = this.layers.cursor.getBoundingClientRect();
    const [sx, sy] = this.view.toScreen(x, y);
    return [rect.left + sx, rect.top + sy];
  }

  begin(name) {
    const ctx = this.ctx[name];
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    ctx.setTransform(...this.view.matrix());
    ctx.imageSmoothingEnabled = this.view.scale < 2;
    return ctx;
  }

  drawFrame(image) {
    const ctx = this.begin("frame");
    if (image) ctx.drawImage(image, 0, 0, this.width, this.height);
    else {
      ctx.fillStyle = "#2b2f36";
      ctx.fillRect(0, 0, this.width, this.height);
    }
    ctx.strokeStyle = "rgba(0,0,0,0.4)";
    ctx.lineWidth = 1 / this.view.scale;
    ctx.strokeRect(0, 0, this.width, this.height);
  }

  /** @param {{key: string, mask: Uint8Array, colour: string, selected: boolean}[]} masks */
  drawMasks(masks) {
    const ctx = this.begin("masks");
    ctx.imageSmoothingEnabled = false;
    for (const m of masks) {
      ctx.globalAlpha = m.selected ? SELECTED_ALPHA : MASK_ALPHA;
      ctx.drawImage(this.bitmap(m.key, m.mask, m.colour), 0, 0);
    }
    ctx.globalAlpha = 1;
  }

  bitmap(key, mask, colour) {
    const id = `${key}:${colour}`;
    const hit = this.bitmaps.get(id);
    if (hit) {
      this.bitmaps.delete(id);
      this.bitmaps.set(id, hit);
      return hit;
    }
    const canvas = document.createElement("canvas");
    canvas.width = this.width;
    canvas.height = this.height;
    const ctx = canvas.getContext("2d");
    const pixels = ctx.createImageData(this.width, this.height);
    const [r, g, b] = hexToRgb(colour);
    const rgba = pixels.data;
    for (let k = 0; k < mask.length; k++) {
      if (!mask[k]) continue;
      const o = 4 * k;
      rgba[o] = r;
      rgba[o + 1] = g;
      rgba[o + 2] = b;
      rgba[o + 3] = 255;
    }
    ctx.putImageData(pixels, 0, 0);
    this.bitmaps.set(id, canvas);
    while (this.bitmaps.size > BITMAP_CACHE) this.bitmaps.delete(this.bitmaps.keys().next().value);
    return canvas;
  }

  /** Clicks (green +, red -) and the box of the selected object's prompt on this frame. */
  drawPrompts(prompt, colour) {
    const ctx = this.begin("prompts");
    if (!prompt) return;
    const px = 1 / this.view.scale;
    if (prompt.box) {
      const [x0, y0, x1, y1] = prompt.box;
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2 * px;
      ctx.setLineDash([6 * px, 4 * px]);
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      ctx.setLineDash([]);
    }
    prompt.points.forEach(([x, y], n) => {
      const positive = prompt.labels[n] === 1;
      ctx.beginPath();
      ctx.arc(x, y, 6 * px, 0, 2 * Math.PI);
      ctx.fillStyle = positive ? "#12b76a" : "#f04438";
      ctx.fill();
      ctx.lineWidth = 1.5 * px;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
      ctx.beginPath();
      ctx.moveTo(x - 3 * px, y);
      ctx.lineTo(x + 3 * px, y);
      if (positive) {
        ctx.moveTo(x, y - 3 * px);
        ctx.lineTo(x, y + 3 * px);
      }
      ctx.stroke();
    });
  }

  /** The brush outline or the box being dragged. */
  drawCursor(state) {
    const ctx = this.begin("cursor");
    if (!state) return;
    const px = 1 / this.view.scale;
    ctx.lineWidth = 1.5 * px;
    if (state.kind === "brush") {
      ctx.beginPath();
      ctx.arc(state.x, state.y, state.radius, 0, 2 * Math.PI);
      ctx.strokeStyle = state.erase ? "#f04438" : "#fff";
      ctx.stroke();
      ctx.strokeStyle = "rgba(0,0,0,0.6)";
      ctx.beginPath();
      ctx.arc(state.x, state.y, state.radius + px, 0, 2 * Math.PI);
      ctx.stroke();
    } else if (state.kind === "box") {
      const x = Math.min(state.x0, state.x1);
      const y = Math.min(state.y0, state.y1);
      ctx.strokeStyle = "#fff";
      ctx.setLineDash([5 * px, 3 * px]);
      ctx.strokeRect(x, y, Math.abs(state.x1 - state.x0), Math.abs(state.y1 - state.y0));
      ctx.setLineDash([]);
    }
  }
}
