/*
 * Workspace-wide undo bookkeeping. The server keeps each object's undo and redo stacks (its
 * draft log); the page remembers in which order the annotator acted on which objects, so
 * Ctrl+Z undoes the last action whichever object it touched, and Ctrl+Shift+Z redoes it.
 *
 * Actions from before a reload are not in the ledger: then undo falls back to the selected
 * object when the server says it can undo (see target()). Pure: node tests check it.
 */

export class UndoLedger {
  constructor() {
    this.done = []; // masklet ids of actions in force, oldest first
    this.undone = []; // masklet ids of undone actions; the next redo is the last
  }

  /** A new action saved on `maskletId`: it can be undone; nothing can be redone any more
   * (the server empties that object's redo stack; the others' redo is dropped here, as
   * editors do after a new action). */
  record(maskletId) {
    this.done.push(maskletId);
    this.undone = [];
  }

  /**
   * The object the next undo (or redo) applies to.
   * @param {"undo" | "redo"} kind
   * @param {{id: number, canUndo: boolean, canRedo: boolean} | null} selected the selected
   *   object and the server's flags for it, for actions the ledger has not seen
   * @returns {number | null}
   */
  target(kind, selected = null) {
    const stack = kind === "undo" ? this.done : this.undone;
    if (stack.length) return stack[stack.length - 1];
    if (selected && (kind === "undo" ? selected.canUndo : selected.canRedo)) return selected.id;
    return null;
  }

  /** An undo (or redo) of `maskletId` succeeded on the server. */
  applied(kind, maskletId) {
    const [from, to] = kind === "undo" ? [this.done, this.undone] : [this.undone, this.done];
    if (from.length && from[from.length - 1] === maskletId) from.pop();
    to.push(maskletId);
  }

  /** The server had nothing to undo (or redo) on `maskletId`: drop the stale entry. */
  stale(kind, maskletId) {
    const stack = kind === "undo" ? this.done : this.undone;
    if (stack.length && stack[stack.length - 1] === maskletId) stack.pop();
  }

  /** The object was deleted, submitted or reloaded from elsewhere: its entries are gone. */
  forget(maskletId) {
    this.done = this.done.filter((id) => id !== maskletId);
    this.undone = this.undone.filter((id) => id !== maskletId);
  }
}
