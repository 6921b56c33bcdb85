// The JSON API client shared by the pages (an ES module): api(url, {method, body, signal}) resolves to
// {ok, status, data} (a server that cannot be reached is status 0 with a detail, never a rejected promise; only
// an aborted request rejects, with its AbortError), with the CSRF token on writes (the page's {% csrf_token %}
// field, else the csrftoken cookie); errorText(data, status) turns a DRF error body into one line for the page.

export function csrfToken() {
  const field = document.querySelector("[name=csrfmiddlewaretoken]");
  if (field) return field.value;
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function api(url, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(url, {
      method, headers, credentials: "same-origin", signal, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    return { ok: false, status: 0, data: { detail: `the server cannot be reached (${err.message})` } };
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  return { ok: res.ok, status: res.status, data };
}

export function errorText(data, status) {
  if (!data) return `HTTP ${status}`;
  if (data.detail) return String(data.detail);
  const text = Object.entries(data).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(" ") : v}`).join("; ");
  return text || `HTTP ${status}`;
}
