// Small form behaviours declared in data-* attributes (the Content-Security-Policy forbids
// inline onsubmit= / onfocus= handlers):
// - <form data-confirm="…"> asks before it is sent;
// - <input data-select-on-focus> selects its whole text when focused (one-time links to copy).

for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

for (const field of document.querySelectorAll("[data-select-on-focus]")) {
  field.addEventListener("focus", () => field.select());
}
