// An evaluation's or filter run's page follows the job: every 2 s while it is queued or
// running, it asks progress.json how many responses are scored, and reloads the page once
// the job is over (the finished page shows the figures, the download or the error).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const panel = $("job");
  if (!panel || panel.dataset.finished === "1") return;
  const bar = $("job-bar");
  const count = $("job-count");
  const status = $("job-status");
  const error = $("job-error");

  function show(data) {
    bar.style.width = `${(100 * data.progress).toFixed(1)}%`;
    bar.parentElement.setAttribute("aria-valuenow", data.done);
    bar.parentElement.setAttribute("aria-valuemax", data.total);
    count.textContent = data.count;
    status.textContent = data.status_label;
    status.className = `run-status status-${data.status}`;
    error.textContent = data.error;
    error.hidden = !data.error;
  }

  async function poll() {
    try {
      const response = await fetch(panel.dataset.progressUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = await response.json();
      show(data);
      if (data.finished) {
        window.location.reload();
        return;
      }
    } catch (err) {
      count.textContent = `${count.textContent.split(" (")[0]} (reconnecting: ${err.message})`;
    }
    setTimeout(poll, 2000);
  }

  setTimeout(poll, 2000);
})();
