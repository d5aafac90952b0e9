// Workspace-wide undo bookkeeping (annotator/undo_ledger.js), keyboard shortcuts
// (annotator/shortcuts.js), object view settings (annotator/objects.js), the draft mirror
// (annotator/drafts.js) and the propagation poll delay (annotator/propagation.js).
import assert from "node:assert/strict";
import test from "node:test";

import { DraftObject } from "../../frontend/static/js/annotator/drafts.js";
import { ObjectPrefs, PALETTE, defaultColour } from "../../frontend/static/js/annotator/objects.js";
import { nextDelay } from "../../frontend/static/js/annotator/propagation.js";
import { SHORTCUTS, actionForKey, keyName } from "../../frontend/static/js/annotator/shortcuts.js";
import { UndoLedger } from "../../frontend/static/js/annotator/undo_ledger.js";
import { maskToRle } from "../../frontend/static/js/lib/rle.js";

test("undo and redo follow the order of actions across objects", () => {
  const ledger = new UndoLedger();
  ledger.record(1);
  ledger.record(2);
  ledger.record(1);
  assert.equal(ledger.target("undo"), 1);
  ledger.applied("undo", 1);
  assert.equal(ledger.target("undo"), 2);
  assert.equal(ledger.target("redo"), 1);
  ledger.applied("undo", 2);
  assert.equal(ledger.target("redo"), 2);
  ledger.applied("redo", 2);
  assert.deepEqual([ledger.done, ledger.undone], [[1, 2], [1]]);
  ledger.record(3); // a new action drops what could be redone
  assert.equal(ledger.target("redo"), null);
  assert.equal(ledger.target("undo"), 3);
});

test("without ledger entries, undo falls back to the selected object's server flags", () => {
  const ledger = new UndoLedger();
  assert.equal(ledger.target("undo", null), null);
  assert.equal(ledger.target("undo", { id: 7, canUndo: true, canRedo: false }), 7);
  assert.equal(ledger.target("redo", { id: 7, canUndo: true, canRedo: false }), null);
  ledger.applied("undo", 7); // an undo from the fallback can be redone
  assert.equal(ledger.target("redo"), 7);
});

test("stale entries and forgotten objects leave the ledger", () => {
  const ledger = new UndoLedger();
  ledger.record(1);
  ledger.record(2);
  ledger.stale("undo", 2);
  assert.equal(ledger.target("undo"), 1);
  ledger.record(2);
  ledger.applied("undo", 2);
  ledger.forget(2);
  assert.deepEqual([ledger.done, ledger.undone], [[1], []]);
});

const key = (k, mods = {}) => ({ key: k, ctrlKey: false, metaKey: false, altKey: false, shiftKey: false, ...mods });

test("shortcut keys map to actions; typing in a text field is never a shortcut", () => {
  assert.equal(actionForKey(key("ArrowRight")), "next");
  assert.equal(actionForKey(key("ArrowLeft", { shiftKey: true })), "prev10");
  assert.equal(actionForKey(key("z", { ctrlKey: true })), "undo");
  assert.equal(actionForKey(key("Z", { ctrlKey: true, shiftKey: true })), "redo");
  assert.equal(actionForKey(key("?", { shiftKey: true })), "help");
  assert.equal(actionForKey(key("[")), "brush-smaller");
  assert.equal(actionForKey(key("]")), "brush-larger");
  assert.equal(actionForKey(key("3")), "tool:brush");
  assert.equal(actionForKey(key(" ")), null); // space is handled on key up (tap: play; hold: pan)
  assert.equal(keyName(key("Z", { ctrlKey: true, shiftKey: true })), "Ctrl+Shift+z");
  const typing = { ...key("1"), target: { closest: (sel) => (sel.includes("input") ? {} : null) } };
  assert.equal(actionForKey(typing), null);
  const actions = SHORTCUTS.map((s) => s.action);
  assert.equal(new Set(actions).size, actions.length);
});

test("object colours are stable per object id; view settings persist in storage", () => {
  assert.equal(defaultColour(0), PALETTE[0]);
  assert.equal(defaultColour(PALETTE.length + 2), PALETTE[2]);
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
  const prefs = new ObjectPrefs("annotate:lease:1", storage);
  prefs.set(5, { hidden: true });
  prefs.set(5, { colour: "#000000" });
  const again = new ObjectPrefs("annotate:lease:1", storage);
  assert.deepEqual(again.get(5), { hidden: true, colour: "#000000" });
  assert.equal(again.colour({ id: 5, objectId: 0 }), "#000000");
  assert.equal(again.colour({ id: 6, objectId: 1 }), PALETTE[1]);
  storage.setItem("broken", "{not json");
  assert.deepEqual(new ObjectPrefs("broken", storage).get(1), {});
});

test("a draft mirror: full load, incremental merge, lazy masks, the frame's click prompt", () => {
  const mask = new Uint8Array(6).fill(1);
  const rle = maskToRle(mask, 2, 3);
  const obj = new DraftObject({ id: 9, object_id: 2, label: "cup", status: "draft", version: 0 });
  assert.equal(obj.name, "#2 cup");
  obj.applyDraft({
    version: 4,
    frames: { 0: rle, 3: null },
    edited_frames: [0],
    prompts: [
      { frame_index: 0, tool: "image_click", points: [[1, 1]], labels: [1], box: null },
      { frame_index: 0, tool: "image_click", points: [[1, 1], [2, 0]], labels: [1, 0], box: null },
    ],
    can_undo: true,
    can_redo: false,
  });
  assert.equal(obj.version, 4);
  assert.deepEqual(obj.maskAt(0), mask);
  assert.equal(obj.maskAt(3), null);
  assert.equal(obj.maskAt(1), undefined);
  assert.deepEqual(obj.promptAt(0), { points: [[1, 1], [2, 0]], labels: [1, 0], box: null });
  assert.deepEqual(obj.promptAt(5), { points: [], labels: [], box: null });
  obj.mergeDraft({ version: 6, frames: { 3: rle, 4: rle } });
  assert.equal(obj.version, 6);
  assert.deepEqual(obj.maskAt(3), mask);
  assert.deepEqual(obj.maskAt(0), mask); // untouched by the merge
  obj.mergeDraft({ version: 7, frames: {}, removed_frames: [4] }); // undone while polling
  assert.equal(obj.maskAt(4), undefined);
  assert.ok(obj.editable);
  obj.applyMeta({ masklet: { status: "submitted", label: "cup" } });
  assert.ok(!obj.editable);
});

test("propagation polling speeds up when frames arrive and backs off when idle", () => {
  assert.equal(nextDelay(1000, true), 300);
  assert.equal(nextDelay(300, false), 450);
  assert.equal(nextDelay(1800, false), 2000);
});
