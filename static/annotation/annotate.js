// The annotator's queue: fetch a pair, answer by keyboard or mouse, submit, repeat.
// Every text shown here arrives as HTML the server has already sanitised.
(function () {
  "use strict";
  const root = document.getElementById("annotator");
  if (!root) return;
  const projectId = root.dataset.project;
  const tiesAllowed = root.dataset.ties === "1";
  const strengthAsked = root.dataset.strength === "1";
  const el = (id) => document.getElementById(id);
  const statusLine = el("status");
  const rationale = el("rationale");

  let assignment = null;
  let choice = null;
  let strength = null;
  let shownAt = 0;
  let busy = false;

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function api(method, url, body) {
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch (e) { data = null; }
    }
    return { status: response.status, data };
  }

  function say(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", Boolean(isError));
  }

  function errorText(data) {
    if (!data) return "Something went wrong; try again.";
    if (data.detail) return data.detail;
    return Object.entries(data).map(([k, v]) => `${k}: ${[].concat(v).join(" ")}`).join("; ");
  }

  // The progress line moves with each label at once; the server's figures (a count over the
  // whole project) are fetched at most every PROGRESS_SECONDS.
  const PROGRESS_SECONDS = 15;
  let progress = null;
  let progressAt = -Infinity;

  function drawProgress() {
    if (!progress) return;
    const total = progress.labelled_today + progress.remaining;
    const share = total ? (100 * progress.labelled_today) / total : 100;
    el("progress-fill").style.width = `${share}%`;
    el("progress-text").textContent =
      `${progress.labelled_today} labelled today · ${progress.remaining} remaining`;
  }

  async function refreshProgress(force) {
    if (!force && performance.now() - progressAt < PROGRESS_SECONDS * 1000) return drawProgress();
    progressAt = performance.now();
    const { status, data } = await api("GET", `/api/projects/${projectId}/progress/`);
    if (status === 200) progress = data;
    drawProgress();
  }

  function countLabelled() {
    if (!progress) return;
    progress.labelled_today += 1;
    progress.remaining = Math.max(0, progress.remaining - 1);
  }

  function render() {
    document.querySelectorAll("[data-choice]").forEach((b) =>
      b.classList.toggle("selected", b.dataset.choice === choice));
    document.querySelectorAll("[data-strength]").forEach((b) =>
      b.classList.toggle("selected", Number(b.dataset.strength) === strength));
    el("left").classList.toggle("chosen", choice === "left");
    el("right").classList.toggle("chosen", choice === "right");
    const strengths = el("strengths");
    if (strengths) strengths.classList.toggle("disabled", choice === "tie");
  }

  function show(next) {
    assignment = next;
    choice = null;
    strength = null;
    rationale.value = "";
    const prompt = el("prompt");
    prompt.replaceChildren();
    for (const turn of next.prompt) {
      const block = document.createElement("div");
      block.className = `turn turn-${turn.role === "assistant" ? "assistant" : "user"}`;
      const who = document.createElement("span");
      who.className = "role";
      who.textContent = turn.role;
      const body = document.createElement("div");
      body.innerHTML = turn.html; // sanitised server-side
      block.append(who, body);
      prompt.append(block);
    }
    el("left-body").innerHTML = next.left_html;   // sanitised server-side
    el("right-body").innerHTML = next.right_html; // sanitised server-side
    el("pair").hidden = false;
    el("done").hidden = true;
    root.dataset.assignment = String(next.id);
    shownAt = performance.now();
    render();
    say("");
    window.scrollTo(0, 0);
  }

  function showNextOrDone(next) {
    if (next) {
      show(next);
    } else {
      assignment = null;
      el("pair").hidden = true;
      el("done").hidden = false;
      root.dataset.assignment = "";
    }
  }

  async function loadNext() {
    busy = true;
    const { status, data } = await api("POST", `/api/projects/${projectId}/next/`);
    busy = false;
    if (status === 200 || status === 204) {
      showNextOrDone(data);
      refreshProgress(status === 204);
    } else {
      say(errorText(data), true);
    }
  }

  function choose(side) {
    if (!assignment) return;
    if (side === "tie" && !tiesAllowed) return;
    choice = side;
    if (side === "tie") strength = null;
    render();
  }

  function setStrength(value) {
    if (!assignment || !strengthAsked || choice === "tie") return;
    strength = value;
    render();
  }

  async function submit() {
    if (!assignment || busy) return;
    if (!choice) return say("Pick a side first: ← left, → right" + (tiesAllowed ? ", ↓ tie." : "."), true);
    if (strengthAsked && choice !== "tie" && strength === null) {
      return say("How much better? Press 0, 1, 2 or 3.", true);
    }
    busy = true;
    const body = {
      choice,
      strength: choice === "tie" ? null : strength,
      rationale: rationale.value,
      duration_ms: Math.round(performance.now() - shownAt),
      next: true,
    };
    const { status, data } = await api("POST", `/api/assignments/${assignment.id}/label/`, body);
    busy = false;
    if (status === 201) {
      countLabelled();
      showNextOrDone(data.next);
      say("Saved.");
      refreshProgress(!data.next);
    } else if (status === 409) {
      say(errorText(data) + " Loading the next pair.", true);
      await loadNext();
    } else {
      say(errorText(data), true);
    }
  }

  async function skip() {
    if (!assignment || busy) return;
    busy = true;
    await api("POST", `/api/assignments/${assignment.id}/skip/`);
    busy = false;
    await loadNext();
  }

  document.addEventListener("keydown", (event) => {
    if (event.target === rationale) {
      if (event.key === "Escape") rationale.blur();
      else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); submit(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    const actions = {
      ArrowLeft: () => choose("left"),
      ArrowRight: () => choose("right"),
      ArrowDown: () => choose("tie"),
      Enter: submit,
      s: skip, S: skip,
      r: () => rationale.focus(), R: () => rationale.focus(),
    };
    if (/^[0-3]$/.test(key)) {
      event.preventDefault();
      setStrength(Number(key));
    } else if (actions[key]) {
      event.preventDefault();
      actions[key]();
    }
  });
  document.querySelectorAll("[data-choice]").forEach((b) =>
    b.addEventListener("click", () => choose(b.dataset.choice)));
  document.querySelectorAll("[data-strength]").forEach((b) =>
    b.addEventListener("click", () => setStrength(Number(b.dataset.strength))));
  el("submit").addEventListener("click", submit);
  el("skip").addEventListener("click", skip);

  loadNext();
})();
