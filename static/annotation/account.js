// The account page: the button that copies a new token (shown where the browser can copy).
(function () {
  "use strict";
  const copy = document.getElementById("copy-token");
  const token = document.getElementById("new-token");
  if (!copy || !token || !navigator.clipboard) return;
  copy.style.display = "";
  copy.addEventListener("click", () => {
    navigator.clipboard.writeText(token.textContent.trim()).then(
      () => { copy.textContent = "Copied"; },
      () => { copy.textContent = "Select the token and copy it"; },
    );
  });
})();
