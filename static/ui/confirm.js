// Forms marked data-confirm ask before they submit (cancelling a run or a judging job).
(function () {
  "use strict";
  document.querySelectorAll("form[data-confirm]").forEach((form) =>
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    }));
})();
