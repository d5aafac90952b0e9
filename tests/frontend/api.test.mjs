// The pages' fetch wrapper (frontend/static/js/lib/api.js) with a stubbed fetch and document.
import assert from "node:assert/strict";
import test from "node:test";

import { ApiError, api, csrfToken, errorMessage, getJSON, postJSON } from "../../frontend/static/js/lib/api.js";

/** Replace globalThis.fetch (and document) for one test; returns the recorded calls. */
function stubFetch(t, respond, { cookie = "csrftoken=tok%3D1; other=x" } = {}) {
  const calls = [];
  const saved = { fetch: globalThis.fetch, document: globalThis.document };
  globalThis.fetch = async (url, init) => {
    calls.push({ url, init });
    return respond(url, init);
  };
  globalThis.document = { cookie, querySelector: () => null };
  t.after(() => {
    globalThis.fetch = saved.fetch;
    if (saved.document === undefined) delete globalThis.document;
    else globalThis.document = saved.document;
  });
  return calls;
}

const json = (status, body, statusText = "") =>
  new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    statusText,
    headers: { "Content-Type": "application/json" },
  });

async function rejection(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

test("GET returns the parsed body and sends no CSRF token", async (t) => {
  const calls = stubFetch(t, () => json(200, { results: [1, 2] }));
  assert.deepEqual(await getJSON("/api/x/"), { results: [1, 2] });
  assert.equal(calls[0].init.method, "GET");
  assert.equal(calls[0].init.credentials, "same-origin");
  assert.equal(calls[0].init.headers["X-CSRFToken"], undefined);
});

test("POST sends JSON with the CSRF token from the cookie", async (t) => {
  const calls = stubFetch(t, () => json(201, { id: 7 }));
  assert.deepEqual(await postJSON("/api/x/", { a: 1 }), { id: 7 });
  const { init } = calls[0];
  assert.equal(init.method, "POST");
  assert.equal(init.headers["X-CSRFToken"], "tok=1");
  assert.equal(init.headers["Content-Type"], "application/json");
  assert.equal(init.body, '{"a":1}');
});

test("an empty answer (204) is null", async (t) => {
  stubFetch(t, () => new Response(null, { status: 204 }));
  assert.equal(await api("/api/x/", { method: "DELETE" }), null);
});

test("an error answer becomes an ApiError with the server's detail and status", async (t) => {
  stubFetch(t, () => json(409, { detail: "Another reviewer holds this masklet." }, "Conflict"));
  const error = await rejection(postJSON("/api/x/", {}));
  assert.ok(error instanceof ApiError);
  assert.ok(error instanceof Error);
  assert.equal(error.message, "Another reviewer holds this masklet.");
  assert.equal(error.status, 409);
  assert.deepEqual(error.body, { detail: "Another reviewer holds this masklet." });
});

test("DRF field errors are joined into the message", async (t) => {
  stubFetch(t, () => json(400, { file: ["Not a readable video file."], non_field_errors: ["Bad."] }));
  const error = await rejection(postJSON("/api/x/", {}));
  assert.equal(error.status, 400);
  assert.equal(error.message, "file: Not a readable video file.; Bad.");
});

test("a non-JSON error page falls back to the status line", async (t) => {
  stubFetch(t, () => new Response("", { status: 502, statusText: "Bad Gateway" }));
  const error = await rejection(getJSON("/api/x/"));
  assert.equal(error.status, 502);
  assert.equal(error.message, "502 Bad Gateway");
});

test("a failed connection is an ApiError with status 0", async (t) => {
  stubFetch(t, () => {
    throw new TypeError("Failed to fetch");
  });
  const error = await rejection(getJSON("/api/x/"));
  assert.ok(error instanceof ApiError);
  assert.equal(error.status, 0);
  assert.match(error.message, /network error: Failed to fetch/);
});

test("a cancelled request rejects with the AbortError itself", async (t) => {
  stubFetch(t, () => {
    throw new DOMException("aborted", "AbortError");
  });
  const error = await rejection(getJSON("/api/x/"));
  assert.equal(error.name, "AbortError");
});

test("csrfToken falls back to the form's hidden input", () => {
  const doc = { cookie: "", querySelector: () => ({ value: "from-form" }) };
  assert.equal(csrfToken(doc), "from-form");
  assert.equal(csrfToken(undefined), "");
});

test("errorMessage prefers detail, then fields, then the fallback", () => {
  assert.equal(errorMessage({ detail: "No." }, "x"), "No.");
  assert.equal(errorMessage({ name: "required" }, "x"), "name: required");
  assert.equal(errorMessage(null, "fallback"), "fallback");
  assert.equal(errorMessage("plain text", "x"), "plain text");
});
