// Timestamps as local, human-readable times: "2 Dec 2026, 09:14" in the reader's time zone.
// Pages render <time datetime="ISO" data-local>…UTC</time>; this module rewrites them on load,
// and scripts format API timestamps (ISO strings) with localTime().

/**
 * @param {string | null | undefined} iso an ISO 8601 timestamp
 * @param {string | undefined} locale BCP 47 tag; the browser's by default
 * @param {string | undefined} timeZone IANA zone; the browser's by default
 * @returns {string} "" for a missing or unreadable value
 */
export function localTime(iso, locale = undefined, timeZone = undefined) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return new Intl.DateTimeFormat(locale, {
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    timeZone,
  }).format(date);
}

/** Rewrite every <time datetime data-local> under `root` in local time (title: the ISO value). */
export function localizeTimes(root = globalThis.document) {
  if (!root || !root.querySelectorAll) return;
  for (const el of root.querySelectorAll("time[data-local][datetime]")) {
    const text = localTime(el.getAttribute("datetime"));
    if (text) {
      el.textContent = text;
      el.title = el.getAttribute("datetime");
    }
  }
}

if (globalThis.document) localizeTimes();
