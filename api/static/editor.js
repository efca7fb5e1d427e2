// The editors' desk: confirmations for sweeping actions, and the draft page's lookup.
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
});

function renderDraftResults(list, items) {
  list.replaceChildren();
  for (const item of items) {
    const entry = document.createElement("li");
    const link = document.createElement("a");
    link.href = "/editor/articles/" + encodeURIComponent(item.slug);
    link.textContent = item.title;
    const meta = document.createElement("span");
    meta.className = "hint";
    meta.textContent = " · " + (item.section || "no section") + " · score " + item.score.toFixed(3);
    meta.title = "The ranking score: semantic similarity, shared terms and word coverage fused; higher comes first";
    entry.append(link, meta);
    list.append(entry);
  }
}

const draft = document.getElementById("draft");
if (draft) {
  draft.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = document.getElementById("draft-status");
    const list = document.getElementById("draft-results");
    const form = new FormData(draft);
    status.textContent = "Looking…";
    try {
      const response = await fetch("/v1/related", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          title: form.get("title"),
          summary: form.get("summary"),
          body: form.get("body"),
          limit: Number(form.get("limit")) || 5,
        }),
      });
      const answer = await response.json();
      if (!response.ok) {
        status.textContent = "Refused: " + JSON.stringify(answer.detail);
        list.replaceChildren();
        return;
      }
      renderDraftResults(list, answer.items);
      status.textContent = answer.items.length + " suggestions from index version " + answer.index_version;
    } catch (error) {
      status.textContent = "The service did not answer: " + error;
    }
  });
}

// The pin form: titles matching the words typed (GET /editor/titles); a choice fills the slug.
const pinSearch = document.getElementById("pin-search");
if (pinSearch) {
  const choices = document.getElementById("pin-choices");
  const target = document.getElementById("pin-target");
  let asked = 0;
  pinSearch.addEventListener("input", async () => {
    const ask = ++asked;
    const words = pinSearch.value.trim();
    if (!words) return choices.replaceChildren();
    const response = await fetch("/editor/titles?" + new URLSearchParams({ q: words }));
    if (!response.ok || ask !== asked) return;
    const found = await response.json();
    if (ask !== asked) return;
    choices.replaceChildren();
    if (!found.length) {
      const none = document.createElement("li");
      none.className = "choices-empty";
      none.textContent = "No article matches “" + words + "”.";
      choices.append(none);
    }
    for (const item of found) {
      const choice = document.createElement("button");
      choice.type = "button";
      choice.dataset.slug = item.slug;
      const title = document.createElement("span");
      title.textContent = item.title;
      const meta = document.createElement("small");
      meta.textContent = item.slug + " · " + item.date;
      choice.append(title, meta);
      choice.addEventListener("click", () => {
        target.value = item.slug;
        pinSearch.value = item.title;
        choices.replaceChildren();
      });
      const entry = document.createElement("li");
      entry.append(choice);
      choices.append(entry);
    }
  });
}
