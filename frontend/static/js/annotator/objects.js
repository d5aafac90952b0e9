/*
 * The object list: select, colour, hide, lock, submit and delete objects. Colours, hidden and
 * locked are the annotator's view settings, kept in localStorage per lease so a reload shows
 * the same workspace; labels, status and masks are the server's.
 */

export const PALETTE = [
  "#1e90ff", "#f04438", "#12b76a", "#f79009", "#7a5af8",
  "#ee46bc", "#06aed4", "#a15c07", "#66c61c", "#6172f3",
];

/** The default colour of an object id (stable across reloads and pages). */
export function defaultColour(objectId) {
  const n = PALETTE.length;
  return PALETTE[((objectId % n) + n) % n];
}

/** View settings per masklet id: {colour?, hidden?, locked?}, persisted in `storage`. */
export class ObjectPrefs {
  constructor(key, storage = globalThis.localStorage) {
    this.key = key;
    this.storage = storage;
    this.values = {};
    try {
      this.values = JSON.parse(storage?.getItem(key) || "{}") || {};
    } catch {
      this.values = {};
    }
  }

  get(id) {
    return this.values[id] || {};
  }

  set(id, patch) {
    this.values[id] = { ...this.get(id), ...patch };
    try {
      this.storage?.setItem(this.key, JSON.stringify(this.values));
    } catch {
      /* private mode or full storage: the settings last for this page only */
    }
  }

  colour(obj) {
    return this.get(obj.id).colour || defaultColour(obj.objectId);
  }
}

const STATUS_TEXT = {
  draft: "draft",
  needs_fix: "to fix",
  submitted: "submitted",
  verified: "verified",
  rejected: "rejected",
};

/** Renders the list; `actions` has select, colour, hide, lock, submit, remove callbacks. */
export function renderObjectList(list, objects, selectedId, prefs, actions, { editable }) {
  list.textContent = "";
  for (const obj of objects) {
    const pref = prefs.get(obj.id);
    const li = document.createElement("li");
    li.className = "object" + (obj.id === selectedId ? " selected" : "");
    li.dataset.masklet = String(obj.id);
    li.dataset.status = obj.status;
    li.addEventListener("click", (e) => {
      if (!e.target.closest("button, input")) actions.select(obj.id);
    });

    const colour = document.createElement("input");
    colour.type = "color";
    colour.className = "colour";
    colour.value = prefs.colour(obj);
    colour.title = "Colour";
    colour.addEventListener("input", () => actions.colour(obj.id, colour.value));

    const name = document.createElement("button");
    name.type = "button";
    name.className = "name link";
    name.textContent = obj.name;
    name.addEventListener("click", () => actions.select(obj.id));

    const status = document.createElement("span");
    status.className = `badge status-${obj.status}`;
    status.textContent = STATUS_TEXT[obj.status] || obj.status;

    const tools = document.createElement("span");
    tools.className = "object-actions";
    const button = (cls, text, title, fn, disabled = false) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = `icon ${cls}`;
      b.textContent = text;
      b.title = title;
      b.disabled = disabled;
      b.addEventListener("click", fn);
      tools.appendChild(b);
      return b;
    };
    button("hide" + (pref.hidden ? " on" : ""), pref.hidden ? "Show" : "Hide",
      pref.hidden ? "Show" : "Hide", () => actions.hide(obj.id, !pref.hidden));
    button("lock" + (pref.locked ? " on" : ""), pref.locked ? "Unlock" : "Lock",
      pref.locked ? "Unlock (allow edits)" : "Lock (no edits)", () => actions.lock(obj.id, !pref.locked));
    const canEdit = editable && obj.editable;
    button("submit", "Submit", "Submit this object for review", () => actions.submit(obj.id), !canEdit);
    if (obj.status === "draft") {
      button("delete", "✕", "Delete this object", () => actions.remove(obj.id), !canEdit);
    }
    li.append(colour, name, status, tools);
    list.appendChild(li);
  }
}
