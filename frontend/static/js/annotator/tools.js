/*
 * Pointer input on the stage: the active tool (click, box, brush, eraser), zoom with the
 * wheel, pan with space-drag or middle-drag. It turns pointer gestures into image-space
 * actions and hands them to the page (onClick, onBox, onStroke); it never talks to the server.
 */
import { clampToImage, insideImage, wheelZoomFactor } from "./view_transform.js";

export const MIN_BRUSH = 1;
export const MAX_BRUSH = 120;

export class ToolController {
  /**
   * @param {import("./layers.js").Stage} stage
   * @param {{onClick: Function, onBox: Function, onStroke: Function, onView: Function,
   *   onRefused: (message: string) => void, strokeColour: () => string}} hooks
   */
  constructor(stage, hooks) {
    this.stage = stage;
    this.hooks = hooks;
    this.tool = null;
    this.negative = false;
    this.brushSize = 12; // diameter in image pixels
    this.spaceHeld = false;
    this.pannedWithSpace = false;
    this.gesture = null; // {kind: "pan" | "box" | "stroke", ...}
    this.hover = null;
    const surface = stage.layers.cursor;
    surface.addEventListener("pointerdown", (e) => this.down(e));
    surface.addEventListener("pointermove", (e) => this.move(e));
    surface.addEventListener("pointerup", (e) => this.up(e));
    surface.addEventListener("pointercancel", () => this.cancel());
    surface.addEventListener("pointerleave", () => {
      this.hover = null;
      if (!this.gesture) this.drawCursor();
    });
    surface.addEventListener("contextmenu", (e) => e.preventDefault());
    surface.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
  }

  setTool(tool) {
    this.tool = tool;
    this.stage.layers.cursor.dataset.tool = tool || "";
    this.drawCursor();
  }

  setBrushSize(size) {
    this.brushSize = Math.max(MIN_BRUSH, Math.min(MAX_BRUSH, Math.round(size)));
    this.drawCursor();
    return this.brushSize;
  }

  get width() {
    return this.stage.width;
  }

  get height() {
    return this.stage.height;
  }

  wheel(event) {
    event.preventDefault();
    const rect = this.stage.layers.cursor.getBoundingClientRect();
    this.stage.view.zoomAt(
      wheelZoomFactor(event.deltaY, event.deltaMode),
      event.clientX - rect.left,
      event.clientY - rect.top,
    );
    this.stage.userMoved = true;
    this.hooks.onView();
  }

  down(event) {
    const surface = this.stage.layers.cursor;
    surface.setPointerCapture(event.pointerId);
    if (event.button === 1 || (event.button === 0 && this.spaceHeld)) {
      event.preventDefault();
      if (this.spaceHeld) this.pannedWithSpace = true;
      this.gesture = { kind: "pan", x: event.clientX, y: event.clientY };
      surface.classList.add("panning");
      return;
    }
    const [x, y] = this.stage.eventToImage(event);
    if (this.tool === "click") {
      if (event.button !== 0 && event.button !== 2) return;
      if (!insideImage(x, y, this.width, this.height)) {
        this.hooks.onRefused("Click inside the frame.");
        return;
      }
      const positive = event.button === 0 && !event.shiftKey && !this.negative;
      this.hooks.onClick(round1(x), round1(y), positive);
    } else if (this.tool === "box" && event.button === 0) {
      const [cx, cy] = clampToImage(x, y, this.width, this.height);
      this.gesture = { kind: "box", x0: cx, y0: cy, x1: cx, y1: cy };
    } else if ((this.tool === "brush" || this.tool === "eraser") && event.button === 0) {
      this.gesture = { kind: "stroke", points: [[x, y]], erase: this.tool === "eraser" };
      this.drawCursor();
    }
  }

  move(event) {
    const g = this.gesture;
    if (g && g.kind === "pan") {
      this.stage.view.panBy(event.clientX - g.x, event.clientY - g.y);
      g.x = event.clientX;
      g.y = event.clientY;
      this.stage.userMoved = true;
      this.hooks.onView();
      return;
    }
    const [x, y] = this.stage.eventToImage(event);
    this.hover = [x, y];
    if (g && g.kind === "box") {
      [g.x1, g.y1] = clampToImage(x, y, this.width, this.height);
    } else if (g && g.kind === "stroke") {
      const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
      for (const c of coalesced.length ? coalesced : [event]) g.points.push(this.stage.eventToImage(c));
    }
    this.drawCursor();
  }

  up(event) {
    const g = this.gesture;
    this.gesture = null;
    this.stage.layers.cursor.classList.remove("panning");
    if (!g) return;
    if (g.kind === "box") {
      const box = [
        round1(Math.min(g.x0, g.x1)), round1(Math.min(g.y0, g.y1)),
        round1(Math.max(g.x0, g.x1)), round1(Math.max(g.y0, g.y1)),
      ];
      if (box[2] - box[0] < 2 || box[3] - box[1] < 2) {
        this.hooks.onRefused("Drag a box around the object (it was too small).");
      } else {
        this.hooks.onBox(box);
      }
    } else if (g.kind === "stroke") {
      this.hooks.onStroke(g.points, this.brushSize / 2, g.erase);
    }
    this.drawCursor();
    if (event) this.hover = this.stage.eventToImage(event);
  }

  cancel() {
    this.gesture = null;
    this.drawCursor();
  }

  drawCursor() {
    const g = this.gesture;
    if (g && g.kind === "box") {
      this.stage.drawCursor({ kind: "box", ...g });
      return;
    }
    if (g && g.kind === "stroke") {
      const ctx = this.stage.begin("cursor");
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.lineWidth = this.brushSize;
      ctx.strokeStyle = g.erase ? "rgba(240,68,56,0.55)" : this.hooks.strokeColour();
      ctx.globalAlpha = g.erase ? 1 : 0.6;
      ctx.beginPath();
      g.points.forEach(([x, y], n) => (n ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      if (g.points.length === 1) ctx.lineTo(g.points[0][0] + 0.01, g.points[0][1]);
      ctx.stroke();
      ctx.globalAlpha = 1;
      return;
    }
    if (this.hover && (this.tool === "brush" || this.tool === "eraser")) {
      const [x, y] = this.hover;
      this.stage.drawCursor({ kind: "brush", x, y, radius: this.brushSize / 2, erase: this.tool === "eraser" });
    } else {
      this.stage.drawCursor(null);
    }
  }
}

function round1(v) {
  return Math.round(v * 10) / 10;
}
