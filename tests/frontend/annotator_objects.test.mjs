// Object labels in the workspace (annotator/objects.js): what the page sends when renaming.
import assert from "node:assert/strict";
import test from "node:test";

import { MAX_LABEL, checkLabel } from "../../frontend/static/js/annotator/objects.js";

test("a label is trimmed as the server trims it", () => {
  assert.deepEqual(checkLabel("  red mug "), { label: "red mug", error: null });
  assert.deepEqual(checkLabel(""), { label: "", error: null });
  assert.deepEqual(checkLabel(undefined), { label: "", error: null });
});

test("a label over the limit or with NUL is refused with the reason", () => {
  assert.equal(checkLabel("x".repeat(MAX_LABEL)).error, null);
  assert.equal(checkLabel(` ${"x".repeat(MAX_LABEL)} `).error, null);
  assert.match(checkLabel("x".repeat(MAX_LABEL + 1)).error, /at most 200 characters; this one has 201/);
  assert.match(checkLabel("cup\u0000").error, /NUL/);
});
