// The review page by keyboard: A, B or T picks the decision and Enter records it (the page
// then opens the next pair); N and P move through the pairs of the table's filter; G goes
// back to the table. Keys typed into a field stay in the field; Esc leaves it, and the keys
// work again. The conversation opens at its last user turn, the question the responses answer.
(function () {
  "use strict";
  const form = document.getElementById("decision-form");
  const picks = { a: "a", b: "b", t: "tie" };
  const links = { n: "next-pair", p: "previous-pair", g: "to-table" };
  const conversation = document.getElementById("conversation");
  const question = document.getElementById("question");
  conversation.scrollTop += question.getBoundingClientRect().top - conversation.getBoundingClientRect().top;

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const field = event.target.closest("input:not([type=radio]), textarea, select");
    if (field) {
      if (event.key === "Escape") field.blur();
      return;
    }
    const key = event.key.toLowerCase();
    if (key in picks) {
      const radio = form.querySelector(`input[name=choice][value="${picks[key]}"]`);
      radio.checked = true;
      event.preventDefault();
    } else if (key === "enter" && form.querySelector("input[name=choice]:checked")) {
      if (event.target.closest("a, button, summary")) return;  // the focused control does its own
      form.requestSubmit();
      event.preventDefault();
    } else if (key in links) {
      const link = document.getElementById(links[key]);
      if (link) window.location.assign(link.href);
    }
  });
  form.dataset.keys = "on";  // the keys work from here (browser tests wait for it)
})();
