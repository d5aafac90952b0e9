// Manager page: upload with a progress bar (XHR gives upload progress events), then poll the
// project's video list until every video is ready or failed; the status line follows the
// uploaded video to its end ("ready: 12 frames" or its error), and failed videos can be removed.
import { csrfToken, errorMessage, getJSON, postJSON } from "./lib/api.js";

const form = document.getElementById("upload-form");
const fileInput = document.getElementById("upload-file");
const bar = document.getElementById("upload-progress");
const statusLine = document.getElementById("upload-status");
const list = document.getElementById("video-list");

function escapeHtml(text) {
  const div = document.createElement("div");
  div.textContent = text ?? "";
  return div.innerHTML;
}

function row(v) {
  const thumb = v.thumbnail_url ? `<img class="thumb" src="${v.thumbnail_url}" alt="">` : "";
  const error = v.error ? `<div class="error">${escapeHtml(v.error)}</div>` : "";
  const size = v.width ? `${v.width}×${v.height}` : "";
  const duration = v.duration ? `${v.duration.toFixed(2)} s` : "";
  const remove = v.status === "failed"
    ? `<button type="button" class="link remove-video" data-remove="${v.id}">Remove</button>` : "";
  const status = v.status === "no_frames" ? "no frames" : v.status;
  return `<tr data-video-id="${v.id}" data-status="${v.status}"><td>${thumb}</td>` +
    `<td><a href="/videos/${v.id}/">${escapeHtml(v.name)}</a></td>` +
    `<td class="status status-${v.status}">${status}${error}${remove}</td>` +
    `<td><progress max="1" value="${v.progress}"></progress></td><td>${size}</td>` +
    `<td>${v.frame_count}</td><td>${duration}</td></tr>`;
}

let pollTimer = null;
let watched = null; // {id, name} of the video this page uploaded, until it is ready or failed

function followUpload(videos) {
  const v = watched && videos.find((x) => x.id === watched.id);
  if (!v) return;
  if (v.status === "ready") {
    statusLine.className = "";
    statusLine.textContent = `${v.name} is ready: ${v.frame_count} frames.`;
    bar.hidden = true;
    watched = null;
  } else if (v.status === "failed") {
    statusLine.className = "error";
    statusLine.textContent = `${v.name} could not be decoded: ${v.error}`;
    bar.hidden = true;
    watched = null;
  }
}

async function refresh() {
  let page;
  try {
    page = await getJSON(list.dataset.url);
  } catch {
    return; // keep the rows shown; the next upload or reload refreshes them
  }
  const rows = page.results.map(row).join("") ||
    '<tr class="empty"><td colspan="7" class="muted">No videos yet.</td></tr>';
  list.querySelector("tbody").innerHTML = rows;
  followUpload(page.results);
  const busy = page.results.some((v) => v.status === "uploaded" || v.status === "decoding");
  clearTimeout(pollTimer);
  if (busy) pollTimer = setTimeout(refresh, 1000);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const file = fileInput.files[0];
  if (!file) return;
  const data = new FormData();
  data.append("file", file);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.dataset.url);
  xhr.setRequestHeader("X-CSRFToken", csrfToken());
  bar.hidden = false;
  bar.value = 0;
  statusLine.className = "";
  statusLine.textContent = `Uploading ${file.name}…`;
  xhr.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) bar.value = e.loaded / e.total;
  });
  // XHR, not fetch: only XHR reports upload progress.
  xhr.addEventListener("load", () => {
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch { body = null; }
    if (xhr.status >= 200 && xhr.status < 300) {
      statusLine.textContent = `Uploaded ${file.name}; decoding frames…`;
      watched = { id: body.id, name: body.name };
    } else {
      statusLine.className = "error";
      statusLine.textContent = `Upload refused: ${errorMessage(body, xhr.statusText)}`;
    }
    form.reset();
    refresh();
  });
  xhr.addEventListener("error", () => {
    statusLine.className = "error";
    statusLine.textContent = "Upload failed: the connection was interrupted.";
  });
  xhr.send(data);
});

list.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-remove]");
  if (!button) return;
  button.disabled = true;
  try {
    await postJSON(`/api/videos/${button.dataset.remove}/remove/`, {});
  } catch (error) {
    statusLine.className = "error";
    statusLine.textContent = `Could not remove the video: ${error.message}`;
  }
  refresh();
});

refresh();
