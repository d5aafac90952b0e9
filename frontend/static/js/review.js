/*
 * Review page: the masklet player, and the reviewer's flag / verdict controls.
 * The flagged frames and their notes travel in the verdict form's hidden fields as JSON.
 * The quality panel shows the masklet's temporal jitter and estimate, and the frames the
 * quality estimator suggests checking are marked on the timeline.
 */
import { getJSON } from "./lib/api.js";
import { MaskletPlayer, pageData } from "./lib/masklet_player.js";
import { jitterLevel, jitterText, markTitle, markedFrames } from "./lib/quality_marks.js";

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

function estimateText(quality) {
  if (quality.acceptance_probability === null) return "no estimator trained yet";
  const text = `${Math.round(quality.acceptance_probability * 100)}% likely to be accepted`;
  if (!quality.auto_accepted) return text;
  return `${text}; auto-accepted (threshold ${quality.auto_accept_threshold})`;
}

/** Jitter, estimate and frames to check: advice, so the page works without them. */
async function showQuality(player) {
  const panel = document.getElementById("quality-panel");
  if (!panel) return;
  const jitter = document.getElementById("quality-jitter");
  const estimate = document.getElementById("quality-estimate");
  const marks = document.getElementById("quality-marks");
  let quality;
  try {
    quality = await getJSON(`/api/masklets/${panel.dataset.masklet}/quality/`);
  } catch (e) {
    jitter.textContent = estimate.textContent = marks.textContent = "unavailable";
    return;
  }
  jitter.textContent = jitterText(quality.jitter);
  jitter.className = jitterLevel(quality.jitter);
  estimate.textContent = estimateText(quality);
  const frames = markedFrames(quality, player.count);
  player.suspect = new Map(frames.map((i) => [i, markTitle(i, quality)]));
  marks.textContent = frames.length ? "" : "none";
  frames.forEach((frame, n) => {
    const link = document.createElement("a");
    link.href = "#";
    link.textContent = String(frame);
    link.title = markTitle(frame, quality);
    link.addEventListener("click", (e) => {
      e.preventDefault();
      player.pause();
      player.show(frame);
    });
    if (n) marks.appendChild(document.createTextNode(", "));
    marks.appendChild(link);
  });
  player.updateTimeline();
  panel.dataset.loaded = "true";
}

function start() {
  const data = pageData("review-data");
  if (!data) return null;
  const player = new MaskletPlayer(data);
  // The form is absent once the masklet is no longer submitted: the page is then view only.
  if (document.getElementById("review-form")) setupReview(player);
  showQuality(player);
  return player;
}

/** The page's player (module scripts run after parsing, so the DOM is complete here). Tests
 * reach it with `(await import(<this module's URL>)).player`. */
export const player = start();
