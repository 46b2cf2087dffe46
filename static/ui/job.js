// A job's page (an evaluation, a filter run, an audit, a judging job) follows the job while
// it is queued or running (follow.js): the progress bar, how much is done, the status and any
// error. The page holds the panel of _ui/_job_status.html.
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

  window.followProgress(panel.dataset.progressUrl, show, (message) => {
    count.textContent = `${count.textContent.split(" (")[0]} (reconnecting: ${message})`;
  });
})();
