/*
 * The annotator's workspace (templates/annotate/workspace.html): wires the stage, the tools,
 * the object list, the timeline, playback and the draft sync together.
 *
 * Every action is saved at once through the annotation API; the page keeps no state the
 * server does not have except view settings (zoom, colours, hidden, locked). Errors are shown
 * in #ws-message, never swallowed. Tests reach the running page through the exported
 * `workspace` (import this module's URL again in page.evaluate).
 */
import { getJSON, postJSON } from "../lib/api.js";
import { FrameCache } from "../lib/frame_cache.js";
import { masksDiffer, strokeEdit } from "./brush.js";
import { DraftObject, DraftSync } from "./drafts.js";
import { FrameFeed } from "./frame_feed.js";
import { FrameViewReporter } from "./frame_views.js";
import { FrameWarmer } from "./frame_warmer.js";
import { Stage } from "./layers.js";
import { ObjectPrefs, checkLabel, renderObjectList } from "./objects.js";
import { Player } from "./playback.js";
import { PropagationRun } from "./propagation.js";
import { bindShortcuts, fillHelp } from "./shortcuts.js";
import { TimelineView, presence, promptedFrames } from "./timeline.js";
import { TimelineStrip } from "./timeline_strip.js";
import { ToolController } from "./tools.js";
import { UndoLedger } from "./undo_ledger.js";

const PREFETCH_AHEAD = 8; // frames loaded ahead of a cursor at rest
const PREFETCH_BEHIND = 2;
const PLAY_AHEAD_SECONDS = 1; // playing: a second of frames ahead (at least PREFETCH_AHEAD)
const FRAME_CACHE = 64; // decoded frames kept (~100 MB at 1024x768)
const FRAME_LOADS = 4; // prefetch loads at once (the browser opens 6 connections per host)
const STEP_FRAMES = 2; // a cursor move of at most this many frames is a step (prefetch at once)
const SETTLE_MS = 150; // after a longer move, prefetch once the cursor rests this long
const RENEW_EVERY_MS = 5 * 60 * 1000;
const MODEL_TOOLS = new Set(["click", "box"]);

const $ = (id) => document.getElementById(id);

class Workspace {
  constructor(data) {
    this.data = data;
    this.video = data.video;
    this.width = data.video.width;
    this.height = data.video.height;
    this.count = Math.max(1, data.video.frame_count);
    this.editable = data.lease.editable;
    this.tools = data.tools; // page tool -> phase tool it sends as
    this.frame = 0;
    this.image = null;
    this.drawToken = 0;
    this.objects = data.objects.map((o) => new DraftObject(o));
    this.selectedId = this.objects.length ? this.objects[0].id : null;
    this.prefs = new ObjectPrefs(`annotate:lease:${data.lease.id}`);
    this.ledger = new UndoLedger();
    this.frames = new FrameCache({ capacity: FRAME_CACHE });
    this.feed = new FrameFeed({
      cache: this.frames,
      urlOf: (i) => this.frameUrl(i),
      count: this.count,
      maxLoads: FRAME_LOADS,
    });
    this.shownFrame = null; // the frame whose picture is on the stage (the cursor's once loaded)
    this.shownToken = 0;
    this.backward = false; // the cursor's last move went back
    this.settleTimer = null;
    this.model = { available: false, configured: false, text: "checking" };
    this.propagation = null; // {run, obj}
    this.pendingPrompt = null; // {id, frame, prompt} shown until the model answers
    this.activity = false;
    this.toolPicked = false; // the annotator chose a tool (button or key)
    // Telemetry: the frames shown, batched to the server (the holder's lease only).
    this.frameViews = this.editable ? new FrameViewReporter({ leaseId: data.lease.id }) : null;
    // the model worker embeds the frame the cursor rests on before the first click there
    this.warmer = this.editable ? new FrameWarmer({ leaseId: data.lease.id }) : null;

    this.sync = new DraftSync({
      onChange: () => this.changed(),
      onError: (message) => this.error(message),
      onSaving: (busy) => this.saving(busy),
    });
    this.stage = new Stage($("stage"), this.width, this.height);
    this.stage.redraw = () => this.draw();
    this.toolbox = new ToolController(this.stage, {
      onClick: (x, y, positive) => this.click(x, y, positive),
      onBox: (box) => this.box(box),
      onStroke: (points, radius, erase) => this.stroke(points, radius, erase),
      onView: () => this.draw(),
      onRefused: (message) => this.error(message),
      strokeColour: () => (this.selected() ? this.prefs.colour(this.selected()) : "#fff"),
    });
    this.timeline = new TimelineView($("timeline"), this.count, (i, id) => {
      this.player.pause();
      if (id !== this.selectedId) this.select(id);
      this.show(i);
    });
    this.player = new Player({
      fps: this.video.fps,
      count: this.count,
      show: (i) => this.show(i),
      current: () => this.frame,
      onState: (playing) => {
        $("play").textContent = playing ? "Pause" : "Play";
      },
    });
    this.bindControls();
    this.bindKeys();
    fillHelp($("help-table"));
    const flagged = data.lease.flagged_frames || [];
    this.frame = flagged.length ? Math.min(this.count - 1, flagged[0]) : 0;
  }

  async start() {
    this.renderObjects();
    this.selectTool(this.defaultTool(), { picked: false });
    await Promise.all([this.loadModel(), ...this.objects.map((o) => this.sync.load(o).catch(
      (e) => this.error(`Loading object #${o.objectId} failed: ${e.message}`),
    ))]);
    // Keep a tool the annotator picked while the model's status loaded; otherwise the default
    // now that it is known (the click once a model serves, not the brush chosen before).
    const keep = this.toolPicked && this.toolUsable(this.toolbox.tool);
    this.selectTool(keep ? this.toolbox.tool : this.defaultTool(), { picked: false });
    await this.show(this.frame);
    // The film strip's thumbnails load once the first frame is on screen.
    this.strip = new TimelineStrip({
      canvas: $("timeline-strip"),
      preview: $("timeline-preview"),
      scrubber: $("scrubber"),
      count: this.count,
      aspect: this.width / Math.max(1, this.height),
      thumbUrl: (i) => `${this.video.thumb_url_prefix}${i}.jpg`,
      onSeek: (i) => {
        this.player.pause();
        this.show(i);
      },
    });
    if (this.editable) setInterval(() => this.renew(), RENEW_EVERY_MS);
    if (this.frameViews) this.frameViews.start();
    $("workspace").dataset.ready = "true";
  }

  // --- state helpers ----------------------------------------------------------------------

  selected() {
    return this.objects.find((o) => o.id === this.selectedId) || null;
  }

  find(id) {
    return this.objects.find((o) => o.id === id) || null;
  }

  /** The selected object when a click would prompt the video model (phase 3): the frame
   * warm-up then prepares its correction too. */
  correctionToWarm() {
    const obj = this.selected();
    if (!obj || !obj.editable || this.tools.click !== "video_click") return null;
    return { id: obj.id, version: obj.version };
  }

  frameUrl(i) {
    return this.video.frame_url_prefix + String(i).padStart(6, "0") + ".jpg";
  }

  /** The object (default: the selected one) when it may be edited now; otherwise say why and
   * return null. */
  editableObject(obj = this.selected()) {
    if (!this.editable) return this.refuse("This lease is read only: you do not hold it.");
    if (!obj) return this.refuse("Add an object first (Objects panel), then draw it.");
    if (!obj.editable) return this.refuse(`Object ${obj.name} is ${obj.status}; it cannot be edited.`);
    if (this.prefs.get(obj.id).locked) return this.refuse(`Object ${obj.name} is locked; unlock it to edit.`);
    if (this.propagation && this.propagation.obj === obj) {
      return this.refuse("Propagation is running on this object; wait for it or cancel it.");
    }
    return obj;
  }

  refuse(message) {
    this.error(message);
    return null;
  }

  // --- messages ---------------------------------------------------------------------------

  error(message) {
    this.notify(message, "error");
  }

  notify(message, kind = "info") {
    const box = $("ws-message");
    box.className = `ws-message ${kind}`;
    $("ws-message-text").textContent = message;
    box.hidden = false;
    box.dataset.kind = kind;
  }

  saving(busy) {
    const label = $("save-state");
    label.textContent = busy ? "Saving…" : "Saved";
    label.classList.toggle("busy", busy);
  }

  // --- drawing ----------------------------------------------------------------------------

  async show(i) {
    const frame = Math.min(this.count - 1, Math.max(0, Math.round(i)));
    if (frame !== this.frame) this.backward = frame < this.frame; // prefetch the way it moves
    const stepped = Math.abs(frame - this.frame) <= STEP_FRAMES;
    this.frame = frame;
    const token = ++this.drawToken;
    $("scrubber").value = String(frame);
    $("frame-label").textContent = `Frame ${frame} / ${this.count - 1}`;
    this.renderTimeline();
    // Away from what is loaded: the old neighbourhood's prefetches must not delay this frame.
    if (!this.frames.has(this.frameUrl(frame))) this.feed.leave();
    const image = await this.feed.frame(frame);
    if (token !== this.drawToken) {
      // The cursor moved on meanwhile (a drag): still show this frame if it is newer than the
      // picture on the stage, so dragging shows every frame that arrives.
      if (image && token > this.shownToken) this.display(frame, image, token);
      return;
    }
    if (!image) this.error(`Frame ${frame} could not be loaded; it will be retried.`);
    this.display(frame, image, token);
    if (image && this.frameViews) this.frameViews.view(frame);
    if (this.warmer && this.model.available) {
      if (this.player.playing) this.warmer.cancel();
      else this.warmer.rest(frame, this.correctionToWarm());
    }
    // Stepping or playing: prefetch now. A drag or a jump: only once the cursor rests there
    // (prefetches the next move skips would be cancelled and hold the connections meanwhile).
    clearTimeout(this.settleTimer);
    if (stepped || this.player.playing) this.prefetch(frame);
    else this.settleTimer = setTimeout(() => this.drawToken === token && this.prefetch(frame), SETTLE_MS);
  }

  prefetch(frame) {
    const playing = this.player.playing;
    const ahead = playing ? this.playAhead() : PREFETCH_AHEAD;
    const behind = playing ? 0 : PREFETCH_BEHIND;
    if (this.backward && !playing) this.feed.window(frame, { ahead: behind, behind: ahead });
    else this.feed.window(frame, { ahead, behind });
  }

  display(frame, image, token) {
    this.image = image;
    this.shownFrame = frame;
    this.shownToken = token;
    this.draw();
    this.stage.root.dataset.frame = String(frame);
  }

  playAhead() {
    const second = Math.ceil((this.video.fps || 6) * PLAY_AHEAD_SECONDS);
    return Math.min(Math.floor(FRAME_CACHE / 2), Math.max(PREFETCH_AHEAD, second));
  }

  /** The frame the stage shows (masks and prompts are drawn for it): the cursor's, once its
   * picture is loaded. */
  get drawnFrame() {
    return this.shownFrame ?? this.frame;
  }

  draw() {
    this.stage.drawFrame(this.image);
    this.drawMasks();
    this.drawPrompts();
    this.toolbox.drawCursor();
    $("zoom-label").textContent = `${Math.round(this.stage.view.scale * 100)}%`;
  }

  drawMasks() {
    const masks = [];
    for (const obj of this.objects) {
      if (this.prefs.get(obj.id).hidden) continue;
      const mask = obj.maskAt(this.drawnFrame);
      if (!mask) continue;
      masks.push({
        key: `${obj.id}:${this.drawnFrame}:${obj.tick}`,
        mask,
        colour: this.prefs.colour(obj),
        selected: obj.id === this.selectedId,
      });
    }
    // The selected object is drawn last, on top.
    masks.sort((a, b) => Number(a.selected) - Number(b.selected));
    this.stage.drawMasks(masks);
  }

  drawPrompts() {
    const obj = this.selected();
    if (!obj || this.prefs.get(obj.id).hidden) {
      this.stage.drawPrompts(null);
      return;
    }
    const pending = this.pendingPrompt;
    const frame = this.drawnFrame;
    const prompt = pending && pending.id === obj.id && pending.frame === frame
      ? pending.prompt : obj.promptAt(frame);
    this.stage.drawPrompts(prompt, this.prefs.colour(obj));
  }

  changed() {
    this.draw();
    this.renderObjects();
    this.renderTimeline();
    this.updateUndo();
  }

  renderObjects() {
    const list = $("object-list");
    renderObjectList(list, this.objects, this.selectedId, this.prefs, {
      select: (id) => this.select(id),
      colour: (id, colour) => {
        this.prefs.set(id, { colour });
        this.draw();
        this.renderTimeline();
      },
      hide: (id, hidden) => {
        this.prefs.set(id, { hidden });
        this.changed();
      },
      lock: (id, locked) => {
        this.prefs.set(id, { locked });
        this.renderObjects();
      },
      rename: (id, text) => this.rename(id, text),
      refresh: () => this.renderObjects(),
      submit: (id) => this.submit(id),
      remove: (id) => this.remove(id),
    }, { editable: this.editable });
    $("objects-empty").hidden = this.objects.length > 0;
  }

  renderTimeline() {
    this.timeline.render(this.objects.map((obj) => ({
      id: obj.id,
      name: obj.name,
      colour: this.prefs.colour(obj),
      states: presence(obj.frames, this.count),
      prompted: promptedFrames(obj.prompts),
      edited: obj.edited,
      selected: obj.id === this.selectedId,
      hidden: Boolean(this.prefs.get(obj.id).hidden),
    })), this.frame);
  }

  updateUndo() {
    const sel = this.selected();
    const flags = sel ? { id: sel.id, canUndo: sel.canUndo, canRedo: sel.canRedo } : null;
    $("undo").disabled = !this.editable || this.ledger.target("undo", flags) === null;
    $("redo").disabled = !this.editable || this.ledger.target("redo", flags) === null;
  }

  select(id) {
    this.selectedId = id;
    this.changed();
    this.rewarm();
  }

  /** The cursor stays on its frame but what a click there needs changed (another object is
   * selected, a propagation ended): ask the worker again once the cursor rests. */
  rewarm() {
    if (this.warmer && this.model.available && !this.player.playing) {
      this.warmer.rest(this.frame, this.correctionToWarm());
    }
  }

  // --- tools ------------------------------------------------------------------------------

  toolUsable(tool) {
    if (!(tool in this.tools)) return false;
    return !MODEL_TOOLS.has(tool) || this.model.available;
  }

  defaultTool() {
    for (const tool of ["click", "box", "brush", "eraser"]) if (this.toolUsable(tool)) return tool;
    return null;
  }

  selectTool(tool, { picked = true } = {}) {
    if (!tool) return;
    if (!(tool in this.tools)) {
      this.error(`The ${tool} tool is not part of ${this.data.project.phase_label}.`);
      return;
    }
    if (!this.toolUsable(tool)) {
      this.error(`The ${tool} tool needs the model: ${this.model.text}`);
      return;
    }
    this.toolbox.setTool(tool);
    if (picked) this.toolPicked = true;
    for (const b of document.querySelectorAll("button.tool")) {
      b.classList.toggle("active", b.dataset.tool === tool);
      b.setAttribute("aria-pressed", String(b.dataset.tool === tool));
    }
  }

  async stroke(points, radius, erase) {
    const obj = this.editableObject();
    if (!obj) return;
    const tool = erase ? "eraser" : "brush";
    if (!(tool in this.tools)) return;
    const frame = this.frame;
    const base = obj.maskAt(frame);
    const { mask, edit } = strokeEdit(base, this.width, this.height, frame, points, radius, tool);
    if (!masksDiffer(base, mask, mask.length)) return;
    obj.setLocal(frame, edit.rle, mask, "brush");
    this.activity = true;
    this.draw();
    this.renderTimeline();
    const version = await this.sync.saveEdits(obj, [edit]);
    if (version !== undefined) this.ledger.record(obj.id);
    this.updateUndo();
  }

  async click(x, y, positive) {
    const obj = this.editableObject();
    if (!obj) return;
    const current = this.pendingFor(obj) || obj.promptAt(this.frame);
    await this.prompt(obj, {
      tool: this.tools.click,
      points: [...current.points, [x, y]],
      labels: [...current.labels, positive ? 1 : 0],
      box: current.box,
    });
  }

  async box(box) {
    const obj = this.editableObject();
    if (!obj) return;
    await this.prompt(obj, { tool: this.tools.box, points: [], labels: [], box });
  }

  pendingFor(obj) {
    const p = this.pendingPrompt;
    return p && p.id === obj.id && p.frame === this.frame ? p.prompt : null;
  }

  async prompt(obj, body) {
    if (!this.model.available) {
      this.error(`Clicks and boxes need the model: ${this.model.text}`);
      return;
    }
    const frame = this.frame;
    this.pendingPrompt = { id: obj.id, frame, prompt: body };
    this.activity = true;
    this.drawPrompts();
    const answer = await this.sync.prompt(obj, { ...body, frame_index: frame });
    if (this.pendingPrompt && this.pendingPrompt.prompt === body) this.pendingPrompt = null;
    if (answer) this.ledger.record(obj.id);
    this.changed();
  }

  async undoRedo(kind) {
    if (!this.editable) return;
    const sel = this.selected();
    const flags = sel ? { id: sel.id, canUndo: sel.canUndo, canRedo: sel.canRedo } : null;
    const id = this.ledger.target(kind, flags);
    if (id === null) {
      this.notify(kind === "undo" ? "Nothing to undo." : "Nothing to redo.");
      return;
    }
    const obj = this.find(id);
    if (!obj) {
      this.ledger.forget(id);
      return;
    }
    const version = await this.sync.step(obj, kind);
    if (version === undefined) this.ledger.stale(kind, id);
    else {
      this.ledger.applied(kind, id);
      if (id !== this.selectedId) this.notify(`${kind === "undo" ? "Undid" : "Redid"} an edit of ${obj.name}.`);
    }
    this.changed();
  }

  // --- objects ----------------------------------------------------------------------------

  async addObject(label) {
    try {
      const summary = await postJSON(`/api/annotation/leases/${this.data.lease.id}/objects/`, {
        label,
      });
      const obj = new DraftObject(summary);
      obj.loaded = true;
      this.objects.push(obj);
      this.objects.sort((a, b) => a.objectId - b.objectId);
      this.select(obj.id);
      this.notify(`Added object ${obj.name}. ${this.model.available ? "Click it on the frame." : "Paint it with the brush."}`);
    } catch (e) {
      this.error(`Adding an object failed: ${e.message}`);
    }
  }

  async rename(id, text) {
    const obj = this.editableObject(this.find(id));
    if (!obj) return;
    const { label, error } = checkLabel(text);
    if (error) {
      this.error(error);
      return;
    }
    const before = obj.name;
    const saved = await this.sync.rename(obj, label);
    if (saved !== undefined) this.notify(`Renamed ${before} to ${obj.name}.`);
    this.changed();
  }

  async submit(id) {
    const obj = this.find(id);
    if (!obj) return;
    const answer = await this.sync.submit(obj);
    if (answer) {
      this.ledger.forget(id);
      this.notify(`Object ${obj.name} submitted for review (revision ${answer.revision_number}).`);
    }
    this.changed();
  }

  async remove(id) {
    const obj = this.find(id);
    if (!obj) return;
    const button = document.querySelector(`#object-list li[data-masklet="${id}"] button.delete`);
    if (button && button.dataset.confirm !== "yes") {
      // Deleting is not undoable: the first press asks, the second deletes.
      button.dataset.confirm = "yes";
      button.textContent = "Delete?";
      setTimeout(() => {
        if (button.isConnected) {
          button.dataset.confirm = "";
          button.textContent = "✕";
        }
      }, 4000);
      return;
    }
    const done = await this.sync.remove(obj);
    if (!done) return;
    this.ledger.forget(id);
    this.objects = this.objects.filter((o) => o.id !== id);
    if (this.selectedId === id) this.selectedId = this.objects.length ? this.objects[0].id : null;
    this.notify(`Deleted object ${obj.name}.`);
    this.changed();
  }

  async finish() {
    try {
      await postJSON(`/api/annotation/leases/${this.data.lease.id}/finish/`, {});
      window.location.assign("/annotate/");
    } catch (e) {
      this.error(`Finishing the video failed: ${e.message}`);
    }
  }

  async renew() {
    if (!this.activity) return;
    this.activity = false;
    try {
      await postJSON(`/api/annotation/leases/${this.data.lease.id}/renew/`, {});
    } catch (e) {
      this.error(`Your lease could not be renewed: ${e.message}`);
    }
  }

  // --- propagation ------------------------------------------------------------------------

  async propagate(direction) {
    if (!("propagate" in this.tools)) return;
    if (!this.model.available) {
      this.error(`Propagation needs the model: ${this.model.text}`);
      return;
    }
    if (this.propagation) {
      this.error("A propagation is already running.");
      return;
    }
    const obj = this.editableObject();
    if (!obj) return;
    const start = this.frame;
    const job = await this.sync.startPropagation(obj, start, direction);
    if (!job) return;
    const run = new PropagationRun({
      sync: this.sync,
      obj,
      job,
      onProgress: (j) => this.propagationProgress(j),
      onDone: (j) => {
        this.propagation = null;
        $("propagate-status").hidden = true;
        if (j.status === "succeeded") {
          this.ledger.record(obj.id);
          this.notify(`Propagation of ${obj.name} finished.`);
        } else if (j.status === "cancelled") {
          // The frames written before the cancel stay in the draft (one save: Undo removes them).
          const kept = [...run.propagated].filter((f) => f !== start).length;
          if (kept) this.ledger.record(obj.id);
          this.notify(`Propagation of ${obj.name} cancelled: the ${kept} frame${kept === 1 ? "" : "s"} ` +
            `it had propagated ${kept === 1 ? "is" : "are"} kept${kept ? " (Undo removes them)" : ""}.`);
        }
        else this.error(`Propagation failed: ${j.error || j.message || j.status}`);
        this.changed();
        this.rewarm();
      },
    });
    this.propagation = { run, obj };
    this.propagationProgress(job);
    $("propagate-status").hidden = false;
    const cancel = $("propagate-cancel");
    cancel.disabled = false;
    cancel.textContent = "Cancel";
    run.run();
  }

  propagationProgress(job) {
    $("propagate-progress").value = Math.max(0, Math.min(1, job.progress || 0));
    $("propagate-text").textContent =
      `${job.status} ${Math.round(100 * (job.progress || 0))}%${job.message ? ` · ${job.message}` : ""}`;
  }

  // --- model ------------------------------------------------------------------------------

  async loadModel() {
    const label = $("model-label");
    const banner = $("model-banner");
    const noModel = (text) => {
      this.model = { available: false, configured: false, text };
      label.textContent = "No model";
      label.classList.add("none");
      banner.textContent = text;
      banner.hidden = false;
    };
    try {
      const info = await getJSON("/api/annotation/model/");
      if (!info.configured) {
        noModel(info.how_to || "No model is configured: clicks, boxes and propagation are off.");
      } else {
        this.model = { available: true, configured: true, text: "", info };
        label.textContent = info.demo
          ? `Demo model${info.name ? ` (${info.name})` : ""}` : `Model: ${info.name}`;
        label.title = info.config ? `config ${info.config}` : "";
        label.classList.toggle("demo", Boolean(info.demo));
      }
    } catch (e) {
      // 404: this server has no model serving (the page data's routes say the same).
      noModel(e.status === 404
        ? "This server does not serve the model yet: clicks, boxes and propagation are off; " +
          "the brush and eraser work."
        : `The model's status could not be read: ${e.message}`);
    }
    for (const b of document.querySelectorAll("button.tool")) {
      const usable = this.toolUsable(b.dataset.tool);
      b.disabled = !usable;
      if (!usable) b.title = `Needs the model: ${this.model.text}`;
    }
    for (const b of document.querySelectorAll("button.propagate")) {
      b.disabled = !this.model.available || !this.editable;
      if (!this.model.available) b.title = `Needs the model: ${this.model.text}`;
    }
  }

  // --- controls ---------------------------------------------------------------------------

  bindControls() {
    $("prev").addEventListener("click", () => this.step(-1));
    $("next").addEventListener("click", () => this.step(1));
    $("play").addEventListener("click", () => this.player.toggle());
    $("scrubber").addEventListener("input", (e) => {
      this.player.pause();
      this.show(Number(e.target.value));
    });
    for (const b of document.querySelectorAll("button.tool")) {
      b.addEventListener("click", () => this.selectTool(b.dataset.tool));
    }
    const negative = $("negative-toggle");
    if (negative) negative.addEventListener("change", () => (this.toolbox.negative = negative.checked));
    const size = $("brush-size");
    size.addEventListener("input", () => this.setBrushSize(Number(size.value)));
    $("undo").addEventListener("click", () => this.undoRedo("undo"));
    $("redo").addEventListener("click", () => this.undoRedo("redo"));
    for (const b of document.querySelectorAll("button.propagate")) {
      b.addEventListener("click", () => this.propagate(b.dataset.direction));
    }
    const cancel = $("propagate-cancel");
    if (cancel) {
      cancel.addEventListener("click", async () => {
        if (!this.propagation) return;
        cancel.disabled = true;
        cancel.textContent = "Cancelling…";
        try {
          await this.propagation.run.cancel();
        } catch (e) {
          cancel.disabled = false;
          cancel.textContent = "Cancel";
          this.error(`Cancelling failed: ${e.message}`);
        }
      });
    }
    $("zoom-fit").addEventListener("click", () => this.stage.fit());
    const form = $("add-object");
    if (form) {
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        const input = $("new-label");
        this.addObject(input.value.trim());
        input.value = "";
      });
    }
    const finish = $("finish-video");
    if (finish) finish.addEventListener("click", () => this.finish());
    $("help-button").addEventListener("click", () => this.toggleHelp());
    $("help-close").addEventListener("click", () => this.toggleHelp(false));
    $("ws-message-close").addEventListener("click", () => ($("ws-message").hidden = true));
    window.addEventListener("beforeunload", (e) => {
      if (this.sync.pending > 0) e.preventDefault(); // a save is still on its way
    });
  }

  setBrushSize(size) {
    const value = this.toolbox.setBrushSize(size);
    $("brush-size").value = String(value);
    $("brush-size-value").textContent = String(value);
  }

  step(delta) {
    this.player.pause();
    this.show(this.frame + delta);
  }

  toggleHelp(open) {
    const overlay = $("help-overlay");
    overlay.hidden = open === undefined ? !overlay.hidden : !open;
  }

  bindKeys() {
    const tools = this.toolbox;
    bindShortcuts({
      prev: () => this.step(-1),
      next: () => this.step(1),
      prev10: () => this.step(-10),
      next10: () => this.step(10),
      "tool:click": () => this.selectTool("click"),
      "tool:box": () => this.selectTool("box"),
      "tool:brush": () => this.selectTool("brush"),
      "tool:eraser": () => this.selectTool("eraser"),
      negative: () => {
        const box = $("negative-toggle");
        if (!box) return;
        box.checked = !box.checked;
        tools.negative = box.checked;
      },
      "brush-smaller": () => this.setBrushSize(tools.brushSize - Math.max(1, Math.round(tools.brushSize * 0.2))),
      "brush-larger": () => this.setBrushSize(tools.brushSize + Math.max(1, Math.round(tools.brushSize * 0.2))),
      undo: () => this.undoRedo("undo"),
      redo: () => this.undoRedo("redo"),
      propagate: () => this.propagate("both"),
      "next-object": () => {
        if (!this.objects.length) return;
        const k = this.objects.findIndex((o) => o.id === this.selectedId);
        this.select(this.objects[(k + 1) % this.objects.length].id);
      },
      hide: () => {
        const obj = this.selected();
        if (obj) {
          this.prefs.set(obj.id, { hidden: !this.prefs.get(obj.id).hidden });
          this.changed();
        }
      },
      fit: () => this.stage.fit(),
      help: () => this.toggleHelp(),
      close: () => {
        this.toggleHelp(false);
        tools.cancel();
      },
    });
    // Space: a tap plays or pauses; held while dragging, it pans.
    const typing = (e) => e.target.closest && e.target.closest("input[type=text], textarea, select, button");
    document.addEventListener("keydown", (e) => {
      if (e.key !== " " || typing(e)) return;
      e.preventDefault();
      if (!e.repeat) {
        tools.spaceHeld = true;
        tools.pannedWithSpace = false;
      }
    });
    document.addEventListener("keyup", (e) => {
      if (e.key !== " " || typing(e)) return;
      e.preventDefault();
      tools.spaceHeld = false;
      if (!tools.pannedWithSpace) this.player.toggle();
    });
  }

  // --- test hooks -------------------------------------------------------------------------

  /** The page's mask of an object on a frame, as a plain array (null: absent or none). */
  maskOf(id, frame) {
    const obj = this.find(id);
    const mask = obj ? obj.maskAt(frame) : undefined;
    return mask ? Array.from(mask) : null;
  }

  /** The frames an object has a saved state on (mask or absent), ascending. */
  annotatedFrames(id) {
    const obj = this.find(id);
    return obj ? [...obj.frames.keys()].sort((a, b) => a - b) : [];
  }

  /** Page coordinates of an image point, for tests that drive the mouse. */
  imageToClient(x, y) {
    return this.stage.imageToClient(x, y);
  }

  /** Resolves when every save queued so far has answered. */
  async settled() {
    await Promise.all(this.objects.map((o) => o.queue));
  }
}

function boot() {
  const source = document.getElementById("annotate-data");
  if (!source) return null;
  const ws = new Workspace(JSON.parse(source.textContent));
  ws.start().catch((e) => ws.error(`The workspace failed to start: ${e.message}`));
  return ws;
}

export const workspace = boot();
