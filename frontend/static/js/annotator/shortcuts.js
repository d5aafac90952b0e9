/*
 * Keyboard shortcuts: one table, used both to dispatch keys and to fill the help overlay.
 * actionForKey() is pure (node tests); bindShortcuts() wires it to the document.
 */

export const SHORTCUTS = [
  { action: "prev", keys: ["ArrowLeft"], help: "Previous frame" },
  { action: "next", keys: ["ArrowRight"], help: "Next frame" },
  { action: "prev10", keys: ["Shift+ArrowLeft"], help: "10 frames back" },
  { action: "next10", keys: ["Shift+ArrowRight"], help: "10 frames forward" },
  // Space is dispatched on key up by the page: held down, it pans the frame instead.
  { action: "play", keys: [" "], help: "Play / pause (hold and drag: pan)", dispatch: false },
  { action: "tool:click", keys: ["1"], help: "Click tool (left: include, shift/right: exclude)" },
  { action: "tool:box", keys: ["2"], help: "Box tool" },
  { action: "tool:brush", keys: ["3"], help: "Brush" },
  { action: "tool:eraser", keys: ["4"], help: "Eraser" },
  { action: "negative", keys: ["n"], help: "Toggle negative clicks" },
  { action: "brush-smaller", keys: ["["], help: "Smaller brush" },
  { action: "brush-larger", keys: ["]"], help: "Larger brush" },
  { action: "undo", keys: ["Ctrl+z", "Meta+z"], help: "Undo" },
  { action: "redo", keys: ["Ctrl+Shift+z", "Meta+Shift+z", "Ctrl+y"], help: "Redo" },
  { action: "propagate", keys: ["p"], help: "Propagate both ways from this frame" },
  { action: "next-object", keys: ["o"], help: "Select the next object" },
  { action: "hide", keys: ["h"], help: "Hide / show the selected object" },
  { action: "fit", keys: ["f"], help: "Fit the frame in view" },
  { action: "help", keys: ["?"], help: "This help" },
  { action: "close", keys: ["Escape"], help: "Close help, cancel a box" },
];

/** The canonical name of a key event: modifiers in a fixed order, letters lower case. */
export function keyName(event) {
  let key = event.key;
  if (key === undefined || key === null) return "";
  if (key.length === 1 && key !== " ") key = key.toLowerCase();
  const mods = [];
  if (event.ctrlKey) mods.push("Ctrl");
  if (event.metaKey) mods.push("Meta");
  if (event.altKey) mods.push("Alt");
  // Shift is part of printable symbols ("?", "{"), so it only counts for named keys and letters.
  if (event.shiftKey && (key.length > 1 || /[a-z]/.test(key))) mods.push("Shift");
  return [...mods, key].join("+");
}

const BY_KEY = new Map();
for (const s of SHORTCUTS) {
  if (s.dispatch !== false) for (const k of s.keys) BY_KEY.set(k, s.action);
}

/** The action of a key event, or null. Keys typed into a text field are never shortcuts. */
export function actionForKey(event) {
  const target = event.target;
  if (target && target.closest && target.closest("input[type=text], textarea, select")) return null;
  return BY_KEY.get(keyName(event)) ?? null;
}

/** Printable form of a key for the help table. */
export function describeKey(key) {
  return key.replace(" ", "Space").replace("ArrowLeft", "←").replace("ArrowRight", "→")
    .replace(/\+([a-z])$/, (_, c) => `+${c.toUpperCase()}`);
}

/** Calls handlers[action](event) for shortcut keys; returns a function that unbinds. */
export function bindShortcuts(handlers, doc = document) {
  const listener = (event) => {
    const action = actionForKey(event);
    if (!action || !handlers[action]) return;
    event.preventDefault();
    handlers[action](event);
  };
  doc.addEventListener("keydown", listener);
  return () => doc.removeEventListener("keydown", listener);
}

/** Fill the help overlay's table from SHORTCUTS. */
export function fillHelp(table) {
  table.textContent = "";
  for (const s of SHORTCUTS) {
    const tr = document.createElement("tr");
    const keys = document.createElement("td");
    keys.className = "keys";
    for (const k of s.keys) {
      const kbd = document.createElement("kbd");
      kbd.textContent = describeKey(k);
      keys.appendChild(kbd);
    }
    const what = document.createElement("td");
    what.textContent = s.help;
    tr.append(keys, what);
    table.appendChild(tr);
  }
}
