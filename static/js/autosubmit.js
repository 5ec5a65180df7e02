// A <select data-autosubmit> sends its form as soon as a choice is made (no inline onchange=,
// which the Content-Security-Policy forbids).

for (const field of document.querySelectorAll("[data-autosubmit]")) {
  field.addEventListener("change", () => field.form?.requestSubmit());
}
