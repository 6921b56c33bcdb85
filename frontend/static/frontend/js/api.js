"use strict";
// The JSON API client shared by the pages: api(url, {method, body}) resolves to {ok, status, data} (a server
// that cannot be reached is status 0 with a detail, never a rejected promise), with the CSRF token on writes
// (the page's {% csrf_token %} field, else the csrftoken cookie); errorText(data, status) turns a DRF error body
// into one line for the page.
window.Cryolabel = window.Cryolabel || {};
(function () {
  function csrfToken() {
    const field = document.querySelector("[name=csrfmiddlewaretoken]");
    if (field) return field.value;
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  window.Cryolabel.api = async function api(url, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(url, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      return { ok: false, status: 0, data: { detail: `the server cannot be reached (${err.message})` } };
    }
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    return { ok: res.ok, status: res.status, data };
  };
  window.Cryolabel.errorText = function errorText(data, status) {
    if (!data) return `HTTP ${status}`;
    if (data.detail) return data.detail;
    return Object.entries(data).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(" ") : v}`).join("; ");
  };
})();
