// Live count of what the curation filters keep, asked of the API as the form changes.
(function () {
  "use strict";
  const form = document.getElementById("curate-form");
  if (!form) return;
  const count = document.getElementById("keep-count");
  const noun = document.getElementById("keep-noun");
  const detail = document.getElementById("keep-detail");
  let timer = null;
  let latest = 0;

  async function refresh() {
    if (!form.querySelector("input[name=difficulty]:checked")) {
      // No difficulty ticked keeps nothing (the API would read "no filter": all of them).
      latest++;
      count.textContent = "0";
      noun.textContent = "pairs";
      detail.textContent = "Tick at least one difficulty.";
      return;
    }
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      if (key === "csrfmiddlewaretoken" || key === "name" || value === "") continue;
      params.append(key, value === "1" && ["exclude_contested", "exclude_ties", "balance_length"].includes(key) ? "true" : value);
    }
    const asked = ++latest;
    const response = await fetch(`${form.dataset.preview}?${params}`, { credentials: "same-origin" });
    if (asked !== latest) return; // a newer request is on its way
    const data = await response.json();
    if (response.ok) {
      count.textContent = data.count.toLocaleString();
      noun.textContent = data.count === 1 ? "pair" : "pairs";
      const mix = Object.entries(data.by_difficulty).map(([k, v]) => `${k} ${v}`).join(", ");
      const dropped = Object.entries(data.dropped).map(([k, v]) => `${k}: ${v}`).join("; ");
      const rule = data.consensus.rule === "count"
        ? "head count" + (data.consensus.why ? ` (${data.consensus.asked} asked for: ${data.consensus.why})` : "")
        : data.consensus.rule;
      const raters = data.dropped_annotators.length ? ` Labels left out from ${data.dropped_annotators.join(", ")}.` : "";
      const notes = data.notes.length ? ` ${data.notes.join(" ")}.` : "";
      detail.textContent = `${mix}.` + (dropped ? ` Left out — ${dropped}.` : "") + raters + ` Consensus by ${rule}.` + notes;
    } else {
      count.textContent = "–";
      detail.textContent = Object.values(data).flat().join(" ");
    }
  }

  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 250); });
  form.addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(refresh, 50); });
  refresh();
})();
