// Model suggestions on the labelling page (a module of label.js), opt-in: the model's prediction is shown (and its
// classes pre-selected) only when the annotator turns "Show model suggestions" on; the setting is off by default
// and remembered per user in this browser.
import { classBySlug, root, state } from "./label-state.js";

const SUGGESTIONS_KEY = `cryolabel.suggestions.${root.dataset.user || ""}`;

// The remembered setting; off when the browser refuses storage (private mode).
export function storedSuggestions() {
  try {
    return localStorage.getItem(SUGGESTIONS_KEY) === "1";
  } catch (err) {
    return false; // storage refused (private mode): the default, off
  }
}

export function storeSuggestions(on) {
  try {
    localStorage.setItem(SUGGESTIONS_KEY, on ? "1" : "0");
  } catch (err) { /* kept for this page only */ }
}

export function suggestedSlugs(prediction) {
  if (!prediction) return [];
  return prediction.classes && prediction.classes.length ? prediction.classes : [prediction.top1].filter(Boolean);
}

// Pre-selects the predicted classes once per item, and only on an item the annotator has not touched.
export function applySuggestion(entry) {
  if (!state.suggestionsOn || entry.vote || entry.suggested || !entry.item.prediction) return;
  entry.suggested = new Set(suggestedSlugs(entry.item.prediction).filter((slug) => classBySlug.has(slug)));
  if (!entry.labels.size) entry.suggested.forEach((slug) => entry.labels.add(slug));
}

export function predictionText(prediction) {
  const names = suggestedSlugs(prediction).map((slug) => (classBySlug.get(slug) || { name: slug }).name);
  return `${names.join(", ")} · ${Math.round(prediction.confidence * 100)}%`;
}
