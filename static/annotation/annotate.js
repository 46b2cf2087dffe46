// The annotator's queue: fetch a pair, answer by keyboard or mouse, submit, repeat.
// Every text shown here arrives as HTML the server has already sanitised.
(function () {
  "use strict";
  const root = document.getElementById("annotator");
  if (!root) return;
  const projectId = root.dataset.project;
  const tiesAllowed = root.dataset.ties === "1";
  const strengthAsked = root.dataset.askStrength === "1";
  const el = (id) => document.getElementById(id);
  const statusLine = el("status");
  const rationale = el("rationale");

  let assignment = null;
  let choice = null;
  let strength = null;
  let shownAt = 0;
  let busy = false;
  // Going back: the pairs answered on this page with their answers (oldest first, the last
  // HISTORY_LIMIT), how many steps back the one on screen is (0: the live pair), and the live
  // pair with its unsent answer, set aside meanwhile.
  const HISTORY_LIMIT = 20;
  const SAVED = window.matchMedia("(hover: none)").matches
    ? "Saved. Back goes back to it." : "Saved. Backspace goes back to it.";
  const answered = [];
  let stepsBack = 0;
  let setAside = null;

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
    document.querySelectorAll("button[data-strength]").forEach((b) =>
      b.classList.toggle("selected", Number(b.dataset.strength) === strength));
    el("left").classList.toggle("chosen", choice === "left");
    el("right").classList.toggle("chosen", choice === "right");
    const strengths = el("strengths");
    if (strengths) strengths.classList.toggle("disabled", choice === "tie");
  }

  // Prompts longer than this many turns show their last user turn; C shows them whole.
  const COLLAPSE_TURNS = 2;

  function drawPrompt(turns, whole) {
    const prompt = el("prompt");
    prompt.replaceChildren();
    let shown = turns;
    if (!whole && turns.length > COLLAPSE_TURNS) {
      const lastUser = turns.map((t) => t.role).lastIndexOf("user");
      shown = turns.slice(lastUser >= 0 ? lastUser : turns.length - 1);
      const note = document.createElement("button");
      note.type = "button";
      note.className = "link earlier";
      note.textContent = `${turns.length - shown.length} earlier turns: show the whole conversation (C)`;
      note.addEventListener("click", () => drawPrompt(turns, true));
      prompt.append(note);
    }
    for (const turn of shown) {
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
    prompt.dataset.whole = whole ? "1" : "0";
    if (whole) prompt.scrollTop = prompt.scrollHeight; // the latest turns stay in view
  }

  // The pair fills the window below its top: prompt, both responses (each scrolling on its
  // own) and the answer panel, which never covers a response.
  function fitToWindow() {
    const pair = el("pair");
    if (pair.hidden) return;
    const top = pair.getBoundingClientRect().top + window.scrollY;
    // A phone's stylesheet ignores it: there the page scrolls and each response keeps its height.
    pair.style.setProperty("--pair-height", `${Math.max(360, window.innerHeight - top - 8)}px`);
    placeGuidelines();
  }

  // The guidelines open over the responses, from the pair's top down to the answer panel,
  // which neither moves nor hides; G or their button shows and hides them, Esc closes them.
  const guidelines = el("guidelines");

  function placeGuidelines() {
    if (!guidelines || guidelines.hidden) return;
    const top = el("pair").hidden ? 0 : el("pair").getBoundingClientRect().top;
    const answer = el("pair").hidden ? window.innerHeight : root.querySelector(".answer").getBoundingClientRect().top;
    guidelines.style.setProperty("--panel-top", `${Math.max(0, top)}px`);
    guidelines.style.setProperty("--panel-bottom", `${Math.max(0, window.innerHeight - answer + 4)}px`);
  }

  function toggleGuidelines(open) {
    if (!guidelines) return;
    guidelines.hidden = !(open ?? guidelines.hidden);
    el("guidelines-open").setAttribute("aria-expanded", String(!guidelines.hidden));
    placeGuidelines();
  }

  function drawGoingBack() {
    const further = stepsBack < answered.length;
    el("back").hidden = !further;
    el("done-back").hidden = !further;
    el("revisit").hidden = stepsBack === 0;
    el("revisit-which").textContent =
      stepsBack === 1 ? "your last answer" : `your answer from ${stepsBack} pairs back`;
  }

  function show(next, answer) {
    assignment = next;
    choice = answer ? answer.choice : null;
    strength = answer ? answer.strength : null;
    if (document.activeElement === rationale) rationale.blur();
    rationale.value = answer ? answer.rationale : "";
    drawPrompt(next.prompt, false);
    el("left-body").innerHTML = next.left_html;   // sanitised server-side
    el("right-body").innerHTML = next.right_html; // sanitised server-side
    el("left-body").scrollTop = 0;
    el("right-body").scrollTop = 0;
    el("pair").hidden = false;
    el("done").hidden = true;
    drawGoingBack();
    root.dataset.assignment = String(next.id);
    shownAt = performance.now();
    render();
    say("");
    window.scrollTo(0, 0);
    fitToWindow();
  }

  function showNextOrDone(next) {
    if (next) {
      show(next);
    } else {
      assignment = null;
      el("pair").hidden = true;
      el("done").hidden = false;
      root.dataset.assignment = "";
      drawGoingBack();
    }
  }

  async function loadNext() {
    busy = true;
    const { status, data } = await api("POST", `/api/projects/${projectId}/next/`);
    busy = false;
    if (status === 200 || status === 204) {
      showNextOrDone(data);
      refreshProgress(status === 204);
      return true;
    }
    say(errorText(data), true);
    return false;
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

  function answerBody() {
    return { choice, strength: choice === "tie" ? null : strength, rationale: rationale.value };
  }

  async function submit() {
    if (!assignment || busy) return;
    if (!choice) return say("Pick a side first: ← left, → right" + (tiesAllowed ? ", ↓ tie." : "."), true);
    if (strengthAsked && choice !== "tie" && strength === null) {
      return say("How much better? Press 0, 1, 2 or 3.", true);
    }
    if (stepsBack) return changeEarlier();
    busy = true;
    const answer = { pair: assignment, ...answerBody() };
    const body = { ...answerBody(), duration_ms: Math.round(performance.now() - shownAt), next: true };
    const { status, data } = await api("POST", `/api/assignments/${assignment.id}/label/`, body);
    busy = false;
    if (status === 201 && data.next === undefined) {
      // Stored, but the database went away before the next pair was read: ask for it alone.
      remember(answer);
      countLabelled();
      say(data.detail || "Saved.");
      if (await loadNext()) say(SAVED);
    } else if (status === 201) {
      remember(answer);
      countLabelled();
      showNextOrDone(data.next);
      say(SAVED);
      refreshProgress(!data.next);
    } else if (status === 409) {
      say(errorText(data) + " Loading the next pair.", true);
      await loadNext();
    } else {
      say(errorText(data), true);
    }
  }

  function remember(answer) {
    answered.push(answer);
    if (answered.length > HISTORY_LIMIT) answered.shift();
  }

  function showEarlier() {
    const earlier = answered[answered.length - stepsBack];
    show(earlier.pair, earlier);
  }

  // Backspace (or U): one pair further back through those answered here, shown with its
  // answer, to change it.
  function goBack() {
    if (busy || stepsBack >= answered.length) return;
    if (stepsBack === 0) setAside = assignment ? { pair: assignment, ...answerBody() } : { pair: null };
    stepsBack += 1;
    showEarlier();
  }

  function returnToLive(message, isError) {
    const live = setAside;
    setAside = null;
    stepsBack = 0;
    if (live.pair) show(live.pair, live.choice ? live : null);
    else showNextOrDone(null);
    say(message, isError);
  }

  // One step nearer the live pair, which comes back after the newest answer.
  function goForward(message) {
    if (stepsBack === 1) return returnToLive(message);
    stepsBack -= 1;
    showEarlier();
    say(message);
  }

  // Enter on an earlier pair: store the changed answer (an unchanged one is not sent) and go
  // forward. One that can no longer change leaves the history, and the live pair returns.
  async function changeEarlier() {
    const earlier = answered[answered.length - stepsBack];
    const body = answerBody();
    const same = ["choice", "strength", "rationale"].every((k) => body[k] === earlier[k]);
    if (same) return goForward("");
    busy = true;
    const { status, data } = await api("PUT", `/api/assignments/${assignment.id}/label/`, body);
    busy = false;
    if (status === 200) {
      Object.assign(earlier, body);
      goForward("Changed.");
    } else if (status === 409 || status === 404) {
      answered.splice(answered.indexOf(earlier), 1);
      returnToLive(errorText(data), true);
    } else {
      say(errorText(data), true);
    }
  }

  function toggleHelp() {
    const help = el("help");
    help.hidden = !help.hidden;
  }

  function scrollResponses(direction) {
    for (const id of ["left-body", "right-body"]) {
      const body = el(id);
      body.scrollBy({ top: direction * body.clientHeight * 0.8 });
    }
  }

  async function skip() {
    if (!assignment || busy || stepsBack) return;
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
    if (!el("help").hidden) {
      if (key === "Escape" || key === "?") { event.preventDefault(); toggleHelp(); }
      return;
    }
    // A focused control (a link or button reached by Tab) does what it says on Enter.
    if (key === "Enter" && event.target.closest("a, button, summary")) return;
    const wholePrompt = () => assignment && drawPrompt(assignment.prompt, el("prompt").dataset.whole !== "1");
    const actions = {
      ArrowLeft: () => choose("left"),
      ArrowRight: () => choose("right"),
      ArrowDown: () => choose("tie"),
      Enter: submit,
      s: skip, S: skip,
      r: () => rationale.focus(), R: () => rationale.focus(),
      Backspace: goBack, u: goBack, U: goBack,
      Escape: () => (guidelines && !guidelines.hidden ? toggleGuidelines(false) : stepsBack && returnToLive("")),
      g: () => toggleGuidelines(), G: () => toggleGuidelines(),
      c: wholePrompt, C: wholePrompt,
      "?": toggleHelp,
      PageDown: () => scrollResponses(1), j: () => scrollResponses(1), J: () => scrollResponses(1),
      PageUp: () => scrollResponses(-1), k: () => scrollResponses(-1), K: () => scrollResponses(-1),
    };
    if (/^[0-3]$/.test(key)) {
      event.preventDefault();
      setStrength(Number(key));
    } else if (actions[key]) {
      event.preventDefault();
      actions[key]();
    }
  });
  window.addEventListener("resize", fitToWindow);

  document.querySelectorAll("[data-choice]").forEach((b) =>
    b.addEventListener("click", () => choose(b.dataset.choice)));
  document.querySelectorAll("button[data-strength]").forEach((b) =>
    b.addEventListener("click", () => setStrength(Number(b.dataset.strength))));
  el("submit").addEventListener("click", submit);
  el("skip").addEventListener("click", skip);
  el("back").addEventListener("click", goBack);
  el("done-back").addEventListener("click", goBack);
  el("return").addEventListener("click", () => stepsBack && returnToLive(""));
  el("help-open").addEventListener("click", toggleHelp);
  el("help-close").addEventListener("click", toggleHelp);
  if (guidelines) {
    el("guidelines-open").addEventListener("click", () => toggleGuidelines());
    el("guidelines-close").addEventListener("click", () => toggleGuidelines(false));
  }
  // A click leaves no focus on a button, so Enter after it still submits the pair.
  root.addEventListener("mousedown", (event) => {
    if (event.target.closest("button")) event.preventDefault();
  });

  loadNext();
})();
