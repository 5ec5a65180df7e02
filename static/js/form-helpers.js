// Behaviour the Content-Security-Policy keeps out of inline attributes:
// <form data-confirm="…"> asks before it is sent; <input data-select-on-focus> selects its text.

for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

for (const field of document.querySelectorAll("[data-select-on-focus]")) {
  field.addEventListener("focus", () => field.select());
}
