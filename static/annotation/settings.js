// The settings page's previews: guidelines as annotators will see them (rendered and
// cleaned by the server, the one Markdown renderer of the app), criteria as the list shown
// beside every pair.
(function () {
  "use strict";
  const previewUrl = document.currentScript.dataset.previewUrl;

  function csrfToken() {
    const field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function showLines(textarea, box) {
    const lines = textarea.value.split("\n").map((line) => line.trim()).filter(Boolean);
    const list = document.createElement("ul");
    lines.forEach((line) => {
      const item = document.createElement("li");
      item.textContent = line;
      list.append(item);
    });
    box.replaceChildren(lines.length ? list : document.createTextNode("None."));
  }

  async function showMarkdown(textarea, box) {
    const body = new URLSearchParams({ text: textarea.value });
    const answer = await fetch(previewUrl, {
      method: "POST", body, headers: { "X-CSRFToken": csrfToken() },
    });
    if (!answer.ok) return;
    box.innerHTML = (await answer.json()).html || "<p class=\"muted\">Nothing yet.</p>";
  }

  document.querySelectorAll("textarea[data-preview]").forEach((textarea) => {
    const box = document.createElement("div");
    box.className = "preview";
    box.id = `${textarea.name}-preview`;
    box.setAttribute("aria-live", "polite");
    const heading = document.createElement("p");
    heading.className = "preview-title muted";
    heading.textContent = "Preview";
    textarea.closest(".field").append(heading, box);
    const show = textarea.dataset.preview === "markdown" ? showMarkdown : showLines;
    let timer = null;
    textarea.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => show(textarea, box), 250);
    });
    show(textarea, box);
  });
})();
