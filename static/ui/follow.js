// Following a queued or running job from its page: every 2 s, ask the job's progress.json,
// hand the answer to `show`, and reload the page once the job is over (the finished page
// shows the figures, the artifact or the error). A failed request is passed to `reconnecting`
// and tried again.
window.followProgress = function (url, show, reconnecting) {
  "use strict";
  async function poll() {
    try {
      const response = await fetch(url, {
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
      reconnecting(err.message);
    }
    setTimeout(poll, 2000);
  }
  setTimeout(poll, 2000);
};
