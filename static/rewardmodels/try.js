// The try page: "Add a response" and "Remove" change the response boxes in place (without
// JavaScript they post the form back with one box more or less), Ctrl+Enter scores, and the
// API's curl command copies with one click.
(function () {
  "use strict";
  const form = document.getElementById("try-form");
  if (!form) return;
  const boxes = document.getElementById("response-boxes");
  const add = document.getElementById("add-response");
  const most = Number(form.dataset.max);
  const fewest = 2;

  function letter(index) { // A … Z, AA, AB …, as the server names them
    let name = "";
    for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) {
      name = String.fromCharCode(65 + ((n - 1) % 26)) + name;
    }
    return name;
  }

  function reletter() {
    const all = boxes.querySelectorAll(".response-box");
    all.forEach((box, index) => {
      box.querySelectorAll(".letter").forEach((span) => { span.textContent = letter(index); });
      const remove = box.querySelector(".remove");
      remove.value = String(index);
      remove.disabled = all.length <= fewest;
    });
    add.disabled = all.length >= most;
  }

  add.addEventListener("click", (event) => {
    event.preventDefault();
    const box = boxes.lastElementChild.cloneNode(true);
    const area = box.querySelector("textarea");
    area.value = "";
    area.removeAttribute("aria-invalid");
    area.style.borderColor = "";
    boxes.appendChild(box);
    reletter();
    area.focus();
  });

  boxes.addEventListener("click", (event) => {
    const remove = event.target.closest(".remove");
    if (!remove) return;
    event.preventDefault();
    remove.closest(".response-box").remove();
    reletter();
  });

  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit(document.getElementById("score"));
    }
  });

  const copy = document.getElementById("copy-curl");
  if (copy && navigator.clipboard) {
    copy.style.display = "";
    copy.addEventListener("click", () => {
      navigator.clipboard.writeText(document.getElementById("curl").textContent).then(
        () => { copy.textContent = "Copied"; },
        () => { copy.textContent = "Select the command and copy it"; },
      );
    });
  }
  reletter();
})();
