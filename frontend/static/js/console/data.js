// Manage page, data in and out: import, automatic masklets and export start jobs through the
// API; the job table polls the project's jobs for live progress, offers Cancel while a job runs
// and a download link once an export is done.
import { api, errorMessage, getJSON, postJSON } from "../lib/api.js";
import { localTime } from "./local_time.js";

const root = document.getElementById("console");
const jobList = document.getElementById("job-list");
const LIVE = new Set(["queued", "running"]);

function escapeHtml(text) {
  const div = document.createElement("div");
  div.textContent = text ?? "";
  return div.innerHTML;
}

function say(id, text, isError = false) {
  const line = document.getElementById(id);
  line.className = isError ? "error" : "";
  line.textContent = text;
}

const KIND_LABELS = {
  ingest: "Ingest video", propagate: "Propagate", auto_masklets: "Automatic masklets",
  export: "Export", import: "Import", train: "Train",
};

function summary(job) {
  const r = job.result || {};
  if (job.status !== "succeeded") return escapeHtml(job.message || "");
  if (job.kind === "export") {
    return `<a class="download" href="/api/exports/${job.id}/download/" download>Download ${escapeHtml(r.filename || "export.zip")}</a>`;
  }
  if (job.kind === "import") return `${r.masklets ?? 0} masklets imported`;
  if (job.kind === "auto_masklets") return `${(r.masklet_ids || []).length} masklets made`;
  if (job.kind === "ingest") return `${r.frame_count ?? 0} frames`;
  return "";
}

function jobRow(job) {
  const error = job.error ? `<div class="error">${escapeHtml(job.error)}</div>` : "";
  const action = LIVE.has(job.status)
    ? `<button type="button" class="cancel" data-cancel="${job.id}">Cancel</button>`
    : ["failed", "cancelled"].includes(job.status)
      ? `<button type="button" class="retry" data-retry="${job.id}">Retry</button>` : "";
  const progress = LIVE.has(job.status) ? `<progress max="1" value="${job.progress}"></progress> ` : "";
  return `<tr data-job-id="${job.id}" data-kind="${job.kind}" data-status="${job.status}">` +
    `<td>${job.id}</td><td>${KIND_LABELS[job.kind] || job.kind}</td>` +
    `<td class="status status-${job.status}">${job.status}${error}</td>` +
    `<td>${progress}${summary(job)}</td>` +
    `<td><time datetime="${job.created_at}">${escapeHtml(localTime(job.created_at))}</time></td>` +
    `<td>${action}</td></tr>`;
}

let timer = null;
export async function refreshJobs() {
  let jobs;
  try {
    jobs = await getJSON(jobList.dataset.url);
  } catch {
    return;
  }
  jobList.querySelector("tbody").innerHTML = jobs.map(jobRow).join("") ||
    '<tr class="empty"><td colspan="6" class="muted">No jobs yet.</td></tr>';
  clearTimeout(timer);
  if (jobs.some((j) => LIVE.has(j.status))) timer = setTimeout(refreshJobs, 1000);
}

jobList.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-cancel], button[data-retry]");
  if (!button) return;
  const id = button.dataset.cancel || button.dataset.retry;
  const verb = button.dataset.cancel ? "cancel" : "retry";
  button.disabled = true;
  try {
    await postJSON(`/api/jobs/${id}/${verb}/`, {});
  } catch (error) {
    say("export-status-line", `Could not ${verb} job ${id}: ${error.message}`, true);
  }
  refreshJobs();
});

document.getElementById("import-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const data = new FormData();
  data.append("file", form.file.files[0]);
  for (const name of ["format", "status", "video"]) {
    if (form[name].value) data.append(name, form[name].value);
  }
  say("import-status-line", "Uploading…");
  try {
    const job = await api(form.dataset.url, { method: "POST", body: data });
    say("import-status-line", `Import job ${job.id} queued.`);
    form.reset();
  } catch (error) {
    say("import-status-line", `Import refused: ${error.message}`, true);
  }
  refreshJobs();
});

function autoConfig(form) {
  const config = {};
  for (const input of form.querySelectorAll(".settings input")) {
    if (input.value !== "") config[input.name] = Number(input.value);
  }
  const advanced = form.advanced.value.trim();
  if (advanced) {
    const parsed = JSON.parse(advanced); // a SyntaxError is reported below
    if (typeof parsed !== "object" || Array.isArray(parsed) || parsed === null) {
      throw new SyntaxError("other settings must be a JSON object");
    }
    Object.assign(config, parsed);
  }
  return config;
}

document.getElementById("auto-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const videos = [...form.querySelectorAll("input[name=videos]:checked")].map((i) => i.value);
  if (!videos.length) return say("auto-status-line", "Choose at least one video.", true);
  let config;
  try {
    config = autoConfig(form);
  } catch (error) {
    return say("auto-status-line", `Settings: ${error.message}`, true);
  }
  const started = [];
  try {
    for (const id of videos) {
      started.push((await postJSON(`/api/videos/${id}/auto-masklets/`, { config })).id);
    }
    say("auto-status-line", `Started job${started.length > 1 ? "s" : ""} ${started.join(", ")}.`);
  } catch (error) {
    say("auto-status-line", `Refused: ${error.message}`, true);
  }
  refreshJobs();
});

document.getElementById("export-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const kinds = [...form.querySelectorAll("input[name=kinds]:checked")].map((i) => i.value);
  try {
    const job = await postJSON(form.dataset.url, { format: form.format.value, kinds });
    say("export-status-line", `Export job ${job.id} (${form.format.value}) queued.`);
  } catch (error) {
    say("export-status-line", `Export refused: ${errorMessage(error.body, error.message)}`, true);
  }
  refreshJobs();
});

if (root) refreshJobs();
