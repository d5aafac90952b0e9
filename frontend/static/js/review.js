/*
 * Review page: the masklet player, and the reviewer's flag / verdict controls.
 * The flagged frames and their notes travel in the verdict form's hidden fields as JSON.
 */
import { MaskletPlayer, pageData } from "./lib/masklet_player.js";

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

function start() {
  const data = pageData("review-data");
  if (!data) return null;
  const player = new MaskletPlayer(data);
  // The form is absent once the masklet is no longer submitted: the page is then view only.
  if (document.getElementById("review-form")) setupReview(player);
  return player;
}

/** The page's player (module scripts run after parsing, so the DOM is complete here). Tests
 * reach it with `(await import(<this module's URL>)).player`. */
export const player = start();
