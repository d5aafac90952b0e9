/*
 * Fix page: the masklet player with the reviewer's flagged frames and notes on the timeline, a
 * brush and an eraser that paint on the mask overlay, and resubmission. Edited frames are sent as
 * uncompressed COCO RLE (column-major run lengths, background first); the server checks and
 * compresses them.
 */
import { MaskletPlayer, pageData } from "./lib/masklet_player.js";
import { maskToCounts } from "./lib/rle.js";

function renderFlagList(player) {
  const list = document.getElementById("flagged-list");
  player.renderFlagList(list);
  if (!player.flagged.size) list.innerHTML = "<li class='muted'>No frames flagged.</li>";
}

function setupFix(player, flags) {
  for (const frame of flags.flagged_frames) {
    player.flagged.set(frame, flags.frame_notes[String(frame)] || "");
  }
  renderFlagList(player);
  if (flags.flagged_frames.length) player.show(flags.flagged_frames[0]);
  else player.updateTimeline();

  const form = document.getElementById("fix-form");
  if (!form) return; // the fix is no longer pending: view only
  const size = document.getElementById("brush-size");
  const editedLabel = document.getElementById("edited-frames");
  const originals = new Map(); // frame -> mask before this page touched it

  function editable(frame) {
    if (!originals.has(frame)) {
      const mask = player.mask(frame);
      originals.set(frame, mask);
      const copy = mask ? new Uint8Array(mask) : new Uint8Array(player.width * player.height);
      player.masks.set(frame, copy);
      player.edited.add(frame);
    }
    return player.masks.get(frame);
  }

  function paint(x, y, erase) {
    const mask = editable(player.frame);
    const radius = Number(size.value) / 2;
    const r2 = radius * radius;
    const x0 = Math.max(0, Math.floor(x - radius));
    const x1 = Math.min(player.width - 1, Math.ceil(x + radius));
    const y0 = Math.max(0, Math.floor(y - radius));
    const y1 = Math.min(player.height - 1, Math.ceil(y + radius));
    for (let row = y0; row <= y1; row++) {
      for (let col = x0; col <= x1; col++) {
        const dx = col + 0.5 - x;
        const dy = row + 0.5 - y;
        if (dx * dx + dy * dy <= r2) mask[row * player.width + col] = erase ? 0 : 1;
      }
    }
  }

  function toImage(event) {
    const rect = player.canvas.getBoundingClientRect();
    return [
      ((event.clientX - rect.left) * player.width) / rect.width,
      ((event.clientY - rect.top) * player.height) / rect.height,
    ];
  }

  let last = null;
  function strokeTo(event) {
    const erase = document.getElementById("tool-eraser").checked;
    const [x, y] = toImage(event);
    // Fill the gap between pointer events so fast strokes stay continuous.
    const steps = last ? Math.max(1, Math.ceil(Math.hypot(x - last[0], y - last[1]) / 2)) : 1;
    for (let s = 1; s <= steps; s++) {
      const t = s / steps;
      paint(last ? last[0] + (x - last[0]) * t : x, last ? last[1] + (y - last[1]) * t : y, erase);
    }
    last = [x, y];
    player.draw();
  }

  player.canvas.addEventListener("pointerdown", (event) => {
    player.pause();
    player.canvas.setPointerCapture(event.pointerId);
    last = null;
    strokeTo(event);
  });
  player.canvas.addEventListener("pointermove", (event) => {
    if (last !== null) strokeTo(event);
  });
  const endStroke = () => {
    if (last === null) return;
    last = null;
    refresh();
  };
  player.canvas.addEventListener("pointerup", endStroke);
  player.canvas.addEventListener("pointercancel", endStroke);

  document.getElementById("revert-frame").addEventListener("click", () => {
    const frame = player.frame;
    if (!originals.has(frame)) return;
    const original = originals.get(frame);
    originals.delete(frame);
    player.edited.delete(frame);
    if (original === undefined) player.masks.delete(frame);
    else player.masks.set(frame, original);
    player.draw();
    refresh();
  });

  function refresh() {
    const frames = [...player.edited].sort((a, b) => a - b);
    editedLabel.textContent = frames.length ? frames.join(", ") : "none";
    player.updateTimeline();
    player.updateInfo();
  }

  form.addEventListener("submit", () => {
    const frames = {};
    for (const frame of player.edited) {
      frames[String(frame)] = {
        size: [player.height, player.width],
        counts: maskToCounts(player.masks.get(frame), player.height, player.width),
      };
    }
    document.getElementById("frames-field").value = JSON.stringify(frames);
  });
}

function start() {
  const data = pageData("review-data");
  if (!data) return null;
  const player = new MaskletPlayer(data);
  setupFix(player, pageData("fix-flags"));
  return player;
}

/** The page's player; tests reach it with `(await import(<this module's URL>)).player`. */
export const player = start();
