// Timestamps as local, human-readable times (frontend/static/js/console/local_time.js).
import assert from "node:assert/strict";
import test from "node:test";

import { localTime, localizeTimes } from "../../frontend/static/js/console/local_time.js";

test("an ISO timestamp reads as day, month, year and time in the given zone", () => {
  const iso = "2026-12-02T07:39:05.123456+00:00";
  assert.equal(localTime(iso, "en-GB", "UTC"), "2 Dec 2026, 07:39");
  assert.equal(localTime(iso, "en-GB", "Europe/Paris"), "2 Dec 2026, 08:39");
});

test("missing or unreadable values give an empty string", () => {
  assert.equal(localTime(null), "");
  assert.equal(localTime("not a date"), "");
});

test("localizeTimes rewrites <time data-local> elements and keeps the ISO value as title", () => {
  const el = {
    textContent: "2 Dec 2026, 07:39 UTC",
    title: "",
    getAttribute: () => "2026-12-02T07:39:05+00:00",
  };
  localizeTimes({ querySelectorAll: () => [el] });
  assert.notEqual(el.textContent, "2 Dec 2026, 07:39 UTC");
  assert.doesNotMatch(el.textContent, /T07:39/);
  assert.equal(el.textContent, localTime("2026-12-02T07:39:05+00:00"));
  assert.equal(el.title, "2026-12-02T07:39:05+00:00");
});
