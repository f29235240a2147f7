// Shared helpers for t2m's pages: API calls (with the API key signed in with, kept in this tab's
// sessionStorage), and small DOM utilities. No framework, no build step.
const t2m = {
  key() { return sessionStorage.getItem("t2m_api_key") || ""; },
  // Without valid credentials (no dev identity, no key or a revoked one): sign in, then come back.
  signIn() {
    if (location.pathname === "/signin") return;
    location.href = `/signin?next=${encodeURIComponent(location.pathname + location.search)}`;
  },
  signOut() { sessionStorage.removeItem("t2m_api_key"); location.href = "/videos"; },
  headers(extra = {}) {
    const h = { ...extra };
    if (t2m.key()) h.Authorization = `Bearer ${t2m.key()}`;
    return h;
  },
  async api(path, options = {}) {
    const res = await fetch(path, { ...options, headers: t2m.headers(options.headers || {}) });
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { body = text; }
    if (res.status === 401) t2m.signIn();
    if (!res.ok) { const err = new Error(t2m.describe(body, res.status)); err.status = res.status; err.body = body; throw err; }
    return body;
  },
  describe(body, status) {
    if (body && Array.isArray(body.detail)) return body.detail.map((d) => `${(d.loc || []).slice(-1)[0]}: ${d.msg}`).join("; ");
    if (body && body.detail) return typeof body.detail === "string" ? body.detail : (body.detail.message || JSON.stringify(body.detail));
    return `request failed (${status})`;
  },
  // Server-Sent Events over fetch, so the Authorization header can be sent. The server sends
  // something (a keep-alive at least) every 15 s: a stream silent for `idleMs` is a half-dead
  // connection, given up on (it throws, as a dropped one does). A refusal carries its status and
  // Retry-After (seconds).
  async events(path, onEvent, idleMs = 30000) {
    const abort = new AbortController();
    let timer = setTimeout(() => abort.abort(), idleMs);
    try {
      const res = await fetch(path, { headers: t2m.headers({ Accept: "text/event-stream" }), signal: abort.signal });
      if (res.status === 401) t2m.signIn();
      if (!res.ok) {
        const err = new Error(`events failed (${res.status})`);
        err.status = res.status; err.retryAfter = Number(res.headers.get("Retry-After")) || 0;
        throw err;
      }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        clearTimeout(timer); timer = setTimeout(() => abort.abort(), idleMs);
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const chunk = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          const data = chunk.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (data) onEvent(JSON.parse(data));
        }
      }
    } finally { clearTimeout(timer); abort.abort(); }
  },
  el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
    return e;
  },
  label(s) { return String(s).replace(/_/g, " "); },
  // A language's name in the reader's language ("fr" → "French"); the code itself where the
  // browser has no name for it (e.g. espeak's "en-us-nyc", which Intl refuses), "Subtitles" when
  // nothing says.
  languageName(code) {
    if (!code) return "Subtitles";
    try { return new Intl.DisplayNames([navigator.language], { type: "language" }).of(code) || code; } catch { return code; }
  },
  when(iso) { return iso ? new Date(iso).toLocaleString() : ""; },
};
// Signed in with a key: the header offers to sign out (which forgets the key).
document.addEventListener("DOMContentLoaded", () => {
  const nav = document.querySelector("header nav");
  if (nav && t2m.key()) nav.append(t2m.el("a", { href: "#", id: "sign-out", onclick: (e) => { e.preventDefault(); t2m.signOut(); } }, "Sign out"));
});
