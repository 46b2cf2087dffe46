// Click a table heading to sort its rows; click again to reverse.
(function () {
  "use strict";
  document.querySelectorAll("table.sortable").forEach((table) => {
    table.querySelectorAll("th").forEach((th, column) => {
      th.tabIndex = 0;
      th.classList.add("sortable-heading");
      const sort = () => {
        const ascending = th.dataset.order !== "asc";
        table.querySelectorAll("th").forEach((other) => delete other.dataset.order);
        th.dataset.order = ascending ? "asc" : "desc";
        const numeric = th.dataset.type === "number";
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        const key = (row) => {
          const cell = row.cells[column];
          const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
          if (!numeric) return raw.toLowerCase();
          return raw === "" ? null : Number(raw);
        };
        rows.sort((a, b) => {
          const x = key(a), y = key(b);
          if (x === y) return 0;
          if (x === null) return 1; // unknown figures last
          if (y === null) return -1;
          return (x < y ? -1 : 1) * (ascending ? 1 : -1);
        });
        rows.forEach((row) => body.appendChild(row));
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
    });
  });
})();
