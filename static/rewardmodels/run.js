// A training run's page follows the run (follow.js): every 2 s while it is queued or running,
// progress.json gives the step, ETA, status, method, log and freshly drawn charts. Text goes
// in with textContent; the charts fragment is HTML that the server rendered and escaped.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const panel = $("run");
  if (!panel) return;
  $("run-log").scrollTop = $("run-log").scrollHeight; // the newest lines first in view
  if (panel.dataset.finished === "1") return;
  const bar = $("run-bar");
  const steps = $("run-steps");
  const eta = $("run-eta");
  const status = $("run-status");
  const method = $("run-method");
  const log = $("run-log");
  const error = $("run-error");
  const live = $("run-live");
  const cancelForm = $("cancel-form");
  const cancelNote = $("cancel-note");

  function show(data) {
    bar.style.width = `${(100 * data.progress).toFixed(1)}%`;
    bar.parentElement.setAttribute("aria-valuenow", data.step);
    bar.parentElement.setAttribute("aria-valuemax", data.total_steps);
    steps.textContent = data.steps;
    eta.textContent = data.eta && !data.finished ? `· about ${data.eta} left` : "";
    status.textContent = data.status_label;
    status.className = `run-status status-${data.status}`;
    method.textContent = data.method; // "auto → LoRA" once the worker has chosen
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = data.log_tail;
    if (atBottom) log.scrollTop = log.scrollHeight;
    error.textContent = data.error;
    error.hidden = !data.error;
    if (cancelForm && data.cancel_requested) {
      cancelForm.hidden = true;
      cancelNote.hidden = false;
    }
    live.innerHTML = data.live_html;
  }

  window.followProgress(panel.dataset.progressUrl, show, (message) => {
    steps.textContent = `${steps.textContent.split(" (")[0]} (reconnecting: ${message})`;
  });
})();
