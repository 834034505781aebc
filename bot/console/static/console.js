// Small improvements only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Characters left in a limited text box.
  for (const box of document.querySelectorAll("textarea[data-counter]")) {
    const out = document.getElementById(box.dataset.counter);
    const limit = Number(box.getAttribute("maxlength"));
    if (!out || !limit) continue;
    const update = () => {
      out.textContent = `Còn ${limit - box.value.length} ký tự.`;
    };
    box.addEventListener("input", update);
    update();
  }
  // A second thought before actions that are hard to undo.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
