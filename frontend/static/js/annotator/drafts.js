/*
 * Objects of the workspace and their drafts, kept in step with the server.
 *
 * DraftObject holds one masklet's draft as the server last answered it (frames as COCO RLE,
 * version, prompt log, edited frames, undo/redo flags) plus decoded masks, decoded lazily.
 * DraftSync saves every action at once through the annotation API. The draft version is the
 * client's base_version: actions on one object are queued so each one starts from the version
 * the previous one returned; a 409 (the draft was saved elsewhere, or the lease is gone) reloads
 * the object from the server and tells the annotator.
 */
import { ApiError, getJSON, postJSON, api } from "../lib/api.js";
import { rleToMask } from "../lib/rle.js";

export const EDITABLE = new Set(["draft", "needs_fix"]);
const PROMPT_TOOLS = new Set(["image_click", "video_click", "image_box", "video_box"]);

export class DraftObject {
  constructor(summary) {
    this.id = summary.id;
    this.objectId = summary.object_id;
    this.label = summary.label || "";
    this.status = summary.status;
    this.kind = summary.kind || "manual";
    this.version = summary.version ?? 0;
    this.frames = new Map(); // frame -> RLE | null (absent)
    this.sources = new Map();
    this.edited = new Set();
    this.prompts = [];
    this.canUndo = false;
    this.canRedo = false;
    this.decoded = new Map(); // frame -> Uint8Array | null
    this.tick = 0; // bumped on every change, for the drawing caches
    this.loaded = false;
    this.queue = Promise.resolve();
  }

  get editable() {
    return EDITABLE.has(this.status);
  }

  get name() {
    return `#${this.objectId}${this.label ? ` ${this.label}` : ""}`;
  }

  /** Replace everything with the server's draft (GET .../draft/). */
  applyDraft(json) {
    this.frames = new Map(Object.entries(json.frames || {}).map(([k, v]) => [Number(k), v]));
    this.sources = new Map(
      Object.entries(json.frame_sources || {}).map(([k, v]) => [Number(k), v]),
    );
    this.decoded.clear();
    this.applyMeta(json);
    this.loaded = true;
  }

  /** Merge the frames of an incremental answer (GET .../draft/?since=v): only those change. */
  mergeDraft(json) {
    for (const [key, rle] of Object.entries(json.frames || {})) {
      const i = Number(key);
      this.frames.set(i, rle);
      this.decoded.delete(i);
    }
    for (const i of json.removed_frames || []) {
      this.frames.delete(i);
      this.decoded.delete(i);
    }
    for (const [key, source] of Object.entries(json.frame_sources || {})) {
      this.sources.set(Number(key), source);
    }
    this.applyMeta(json);
  }

  applyMeta(json) {
    if (json.masklet) {
      this.status = json.masklet.status;
      this.label = json.masklet.label ?? this.label;
    }
    if (Number.isInteger(json.version)) this.version = json.version;
    if (Array.isArray(json.edited_frames)) this.edited = new Set(json.edited_frames);
    if (Array.isArray(json.prompts)) this.prompts = json.prompts;
    if (typeof json.can_undo === "boolean") this.canUndo = json.can_undo;
    if (typeof json.can_redo === "boolean") this.canRedo = json.can_redo;
    this.tick += 1;
  }

  /** The frame's mask: Uint8Array, null (object absent) or undefined (not annotated). */
  maskAt(i) {
    if (this.decoded.has(i)) return this.decoded.get(i);
    if (!this.frames.has(i)) return undefined;
    const rle = this.frames.get(i);
    const mask = rle ? rleToMask(rle) : null;
    this.decoded.set(i, mask);
    return mask;
  }

  /** Show a mask at once (a brush stroke) before the server confirms it. */
  setLocal(i, rle, mask, source) {
    this.frames.set(i, rle);
    this.decoded.set(i, mask);
    if (source) this.sources.set(i, source);
    this.tick += 1;
  }

  /** The frame's current click prompt: the last click or box prompt saved on it. */
  promptAt(i) {
    for (let k = this.prompts.length - 1; k >= 0; k--) {
      const p = this.prompts[k];
      if (p.frame_index !== i || !PROMPT_TOOLS.has(p.tool)) continue;
      return {
        points: (p.points || []).map((pt) => [pt[0], pt[1]]),
        labels: [...(p.labels || [])],
        box: p.box ? [...p.box] : null,
      };
    }
    return { points: [], labels: [], box: null };
  }
}

export function isConflict(error) {
  return error instanceof ApiError && error.status === 409;
}

export class DraftSync {
  /**
   * @param {{onChange: (obj: DraftObject) => void, onError: (message: string) => void,
   *   onSaving: (busy: boolean) => void}} hooks
   */
  constructor({ onChange, onError, onSaving = () => {} }) {
    this.onChange = onChange;
    this.onError = onError;
    this.onSaving = onSaving;
    this.pending = 0;
  }

  url(obj, tail = "") {
    return `/api/masklets/${obj.id}/${tail}`;
  }

  /** Run `action` after the object's previous actions; errors are reported, 409s reload. */
  enqueue(obj, action) {
    this.pending += 1;
    this.onSaving(true);
    const run = obj.queue.then(action).then(
      (value) => value,
      async (error) => {
        await this.report(obj, error);
        return undefined;
      },
    );
    obj.queue = run.finally(() => {
      this.pending -= 1;
      this.onSaving(this.pending > 0);
    });
    return run;
  }

  async report(obj, error) {
    if (error && error.name === "AbortError") return;
    const message = error instanceof Error ? error.message : String(error);
    if (isConflict(error)) {
      try {
        await this.load(obj);
        const end = /[.!?]$/.test(message) ? "" : ".";
        this.onError(`${message}${end} ${obj.name} was reloaded from the server; redo your last change there.`);
      } catch (reloadError) {
        this.onError(`${message} (reloading failed: ${reloadError.message})`);
      }
      return;
    }
    this.onError(message);
    // The page may show a local change the server refused: show the server's state again.
    try {
      await this.load(obj);
    } catch {
      /* the first message says enough */
    }
  }

  async load(obj) {
    const json = await getJSON(this.url(obj, "draft/"));
    obj.applyDraft(json);
    this.onChange(obj);
    return obj;
  }

  /** Frames changed after `since` (propagation results); merged into the object. */
  async loadSince(obj, since) {
    const json = await getJSON(this.url(obj, `draft/?since=${encodeURIComponent(since)}`));
    obj.mergeDraft(json);
    this.onChange(obj);
    return json;
  }

  /** Save one action's frame edits (a brush stroke). Resolves to the new version or undefined. */
  saveEdits(obj, edits) {
    return this.enqueue(obj, async () => {
      const saved = await postJSON(this.url(obj, "draft/edits/"), {
        base_version: obj.version,
        edits,
      });
      obj.version = saved.version;
      obj.canUndo = true;
      obj.canRedo = false;
      for (const e of edits) {
        if (e.tool === "brush" || e.tool === "eraser") obj.edited.add(e.frame_index);
      }
      obj.tick += 1;
      this.onChange(obj);
      return saved.version;
    });
  }

  /** A click or box through the model: the server saves the prompt and its mask. */
  prompt(obj, body) {
    return this.enqueue(obj, async () => {
      const answer = await postJSON(this.url(obj, "prompt/"), {
        ...body,
        base_version: obj.version,
      });
      obj.version = answer.version;
      obj.frames.set(answer.frame_index, answer.rle);
      obj.decoded.delete(answer.frame_index);
      obj.sources.set(answer.frame_index, "click");
      obj.prompts = [
        ...obj.prompts,
        {
          frame_index: answer.frame_index,
          tool: body.tool,
          points: body.points,
          labels: body.labels,
          box: body.box,
        },
      ];
      obj.edited.add(answer.frame_index);
      obj.canUndo = true;
      obj.canRedo = false;
      obj.tick += 1;
      this.onChange(obj);
      return answer;
    });
  }

  /** Undo or redo the object's last action on the server, then reload its draft. */
  step(obj, kind) {
    return this.enqueue(obj, async () => {
      const saved = await postJSON(this.url(obj, `draft/${kind}/`), { base_version: obj.version });
      obj.version = saved.version;
      await this.load(obj);
      return saved.version;
    });
  }

  /** Rename the object (a save of its draft). Resolves to the new label or undefined. */
  rename(obj, label) {
    return this.enqueue(obj, async () => {
      const answer = await postJSON(this.url(obj, "draft/label/"), {
        base_version: obj.version,
        label,
      });
      obj.version = answer.version;
      obj.label = answer.label;
      obj.tick += 1;
      this.onChange(obj);
      return answer.label;
    });
  }

  submit(obj) {
    return this.enqueue(obj, async () => {
      const answer = await postJSON(this.url(obj, "draft/submit/"), { base_version: obj.version });
      obj.status = answer.status;
      obj.version = answer.version;
      await this.load(obj);
      return answer;
    });
  }

  remove(obj) {
    return this.enqueue(obj, async () => {
      await api(this.url(obj, `draft/?base_version=${obj.version}`), { method: "DELETE" });
      return true;
    });
  }

  startPropagation(obj, startFrame, direction) {
    return this.enqueue(obj, async () => {
      const answer = await postJSON(this.url(obj, "propagate/"), {
        base_version: obj.version,
        start_frame: startFrame,
        direction,
      });
      return answer.job;
    });
  }
}
