// Predict button: queues a prediction job (POST /api/v1/predict/) and follows it to its end.
//
// Markup (any page; one or more):
//   <span class="predict" data-predict data-network="{{ network }}">
//     <label class="inline-label">MC dropout <input type="number" data-predict-mc min="0" max="100" value="0"></label>
//     <button type="button" class="primary" data-predict-button>Predict</button>
//     <span class="muted small" data-predict-status role="status"></span>
//   </span>
//   <script type="module" src="{% static 'frontend/js/predict-button.js' %}"></script>
// The MC-dropout input is optional (absent: one plain pass). The page needs a {% csrf_token %} (or the csrftoken
// cookie: api.js takes either). When the job ends, the container fires "cryolabel:predicted" with the job in
// event.detail, so the page can reload what shows predictions. A refusal (no active version, missing checkpoint) shows its reason.
import { api, errorText } from "./api.js";

const POLL_MS = 1000;

function show(status, text, kind) {
  if (!status) return;
  status.textContent = text;
  status.dataset.kind = kind || "";
  status.classList.toggle("bad", kind === "bad");
  status.classList.toggle("good", kind === "good");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function follow(root, status, jobId) {
  for (;;) {
    await sleep(POLL_MS);
    const { ok, status: code, data } = await api(`/api/v1/jobs/${jobId}/`);
    if (!ok) {
      show(status, `job #${jobId}: ${errorText(data, code)}`, "bad");
      return null;
    }
    const pct = Math.round((data.progress || 0) * 100);
    if (["succeeded", "failed", "cancelled"].includes(data.state)) {
      const kind = data.state === "succeeded" ? "good" : "bad";
      show(status, `job #${jobId} ${data.state}: ${data.error ? data.error.split("\n")[0] : data.message}`, kind);
      root.dispatchEvent(new CustomEvent("cryolabel:predicted", { bubbles: true, detail: data }));
      return data;
    }
    show(status, `job #${jobId} ${data.state} ${pct}%: ${data.message}`, "");
  }
}

function wire(root) {
  const button = root.querySelector("[data-predict-button]");
  const status = root.querySelector("[data-predict-status]");
  const mcInput = root.querySelector("[data-predict-mc]");
  if (!button) return;
  button.addEventListener("click", async () => {
    const mc = mcInput ? Number.parseInt(mcInput.value || "0", 10) : 0;
    // No network named: the server predicts with the imagettes' network (the API's default).
    const body = { ...(root.dataset.network ? { network: root.dataset.network } : {}), mc_dropout: Number.isFinite(mc) ? mc : 0 };
    button.disabled = true;
    show(status, "queueing…", "");
    try {
      const { ok, status: code, data } = await api("/api/v1/predict/", { method: "POST", body });
      if (!ok) {
        show(status, errorText(data, code), "bad");
        return;
      }
      show(status, `job #${data.id} queued on the ${data.queue} queue`, "");
      await follow(root, status, data.id);
    } finally {
      button.disabled = false;
    }
  });
}

function init() {
  document.querySelectorAll("[data-predict]").forEach(wire);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
else init();
