/*
 * JSON calls to the platform's API from the pages.
 *
 * Unsafe methods carry Django's CSRF token (read from the `csrftoken` cookie, or from the page's
 * {% csrf_token %} input when the cookie is not readable). Any answer outside 2xx, and a failed
 * connection, becomes an ApiError whose message is the server's `detail` (DRF's and the engine
 * error handler's field), so a page can show it as it is.
 */

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

export class ApiError extends Error {
  /**
   * @param {string} message the server's `detail`, or a description of the failure
   * @param {number} status HTTP status; 0 when no answer came back
   * @param {any} body the parsed JSON body, when there was one
   */
  constructor(message, status, body = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

/**
 * Django's CSRF token: the `csrftoken` cookie, else the value of a csrfmiddlewaretoken input.
 * @param {{cookie?: string, querySelector?: Function} | undefined} doc
 * @returns {string}
 */
export function csrfToken(doc = globalThis.document) {
  if (!doc) return "";
  for (const part of (doc.cookie || "").split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "csrftoken") return decodeURIComponent(rest.join("="));
  }
  const input = doc.querySelector ? doc.querySelector("input[name=csrfmiddlewaretoken]") : null;
  return input ? input.value : "";
}

/**
 * A readable message from an error body: `detail`, else DRF's field errors, else the fallback.
 * @param {any} body
 * @param {string} fallback
 * @returns {string}
 */
export function errorMessage(body, fallback) {
  if (body && typeof body === "object" && !Array.isArray(body)) {
    if (typeof body.detail === "string" && body.detail) return body.detail;
    const parts = Object.entries(body).map(([field, value]) => {
      const text = Array.isArray(value) ? value.join(" ") : String(value);
      return field === "non_field_errors" ? text : `${field}: ${text}`;
    });
    if (parts.length) return parts.join("; ");
  }
  if (Array.isArray(body) && body.length) return body.join(" ");
  if (typeof body === "string" && body) return body;
  return fallback;
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Call `url` and return its parsed JSON body (null for an empty one).
 * @param {string} url
 * @param {{method?: string, body?: any, headers?: object, signal?: AbortSignal}} [options]
 *   body: sent as JSON unless it is FormData.
 * @returns {Promise<any>}
 * @throws {ApiError}
 */
export async function api(url, { method = "GET", body, headers = {}, signal } = {}) {
  const upper = method.toUpperCase();
  const init = {
    method: upper,
    credentials: "same-origin",
    headers: { Accept: "application/json", ...headers },
    signal,
  };
  if (!SAFE_METHODS.has(upper)) init.headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) {
    if (typeof FormData !== "undefined" && body instanceof FormData) init.body = body;
    else {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
  }
  let response;
  try {
    response = await globalThis.fetch(url, init);
  } catch (error) {
    if (error && error.name === "AbortError") throw error; // the caller cancelled: not a failure
    throw new ApiError(`network error: ${error && error.message ? error.message : error}`, 0);
  }
  const parsed = await readBody(response);
  if (!response.ok) {
    const fallback = `${response.status} ${response.statusText || "error"}`.trim();
    throw new ApiError(errorMessage(parsed, fallback), response.status, parsed);
  }
  return parsed;
}

export const getJSON = (url, options = {}) => api(url, { ...options, method: "GET" });
export const postJSON = (url, body, options = {}) => api(url, { ...options, method: "POST", body });
