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

export const MAX_LABEL = 200;

/**
 * A label as the server will keep it (trimmed), or the reason it would refuse it.
 * @param {string} text
 * @returns {{label: string, error: string | null}}
 */
export function checkLabel(text) {
  const label = String(text ?? "").trim();
  if (label.includes("\u0000")) return { label, error: "A label cannot contain a NUL character." };
  if (label.length > MAX_LABEL) {
    return { label, error: `A label has at most ${MAX_LABEL} characters; this one has ${label.length}.` };
  }
  return { label, error: null };
}

/**
 * Turn an object's name button into a text field; Enter or leaving the field saves (`save` is
 * called with the new text only if it changed), Escape cancels; `close` is called either way.
 * While the field is open renderObjectList leaves the list alone (see there).
 */
export function editLabel(nameButton, current, save, close = () => {}) {
  const input = document.createElement("input");
  input.type = "text";
  input.className = "rename";
  input.value = current;
  input.maxLength = MAX_LABEL;
  input.setAttribute("aria-label", "Object's label");
  let done = false;
  const finish = (commit) => {
    if (done) return;
    done = true;
    input.replaceWith(nameButton);
    if (commit && input.value.trim() !== current) save(input.value);
    close();
  };
  input.addEventListener("keydown", (e) => {
    e.stopPropagation(); // typing is not a shortcut
    if (e.key === "Enter") {
      e.preventDefault();
      finish(true);
    } else if (e.key === "Escape") {
      e.preventDefault();
      finish(false);
    }
  });
  input.addEventListener("blur", () => finish(true));
  nameButton.replaceWith(input);
  input.focus();
  input.select();
  return input;
}

const STATUS_TEXT = {
  draft: "draft",
  needs_fix: "to fix",
  submitted: "submitted",
  verified: "verified",
  rejected: "rejected",
};

/** Renders the list; `actions` has select, colour, hide, lock, rename, submit, remove
 * callbacks. The name button (or a double click on it) opens the label for editing. */
export function renderObjectList(list, objects, selectedId, prefs, actions, { editable }) {
  // A label being typed is not thrown away by a redraw (a propagation's poll redraws often):
  // the list is drawn again when the field closes.
  if (list.querySelector("input.rename")) return;
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
    const rename = () => editLabel(
      name, obj.label, (text) => actions.rename(obj.id, text), () => actions.refresh(),
    );
    if (canEdit) name.addEventListener("dblclick", rename);
    button("rename", "Rename", "Rename this object (double-click its name)", rename, !canEdit);
    button("submit", "Submit", "Submit this object for review", () => actions.submit(obj.id), !canEdit);
    if (obj.status === "draft") {
      button("delete", "✕", "Delete this object", () => actions.remove(obj.id), !canEdit);
    }
    li.append(colour, name, status, tools);
    list.appendChild(li);
  }
}
