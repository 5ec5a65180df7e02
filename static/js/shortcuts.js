// Keyboard-first habits shared by every page:
//   "/" focuses the page's search box, Ctrl+Enter (⌘+Enter) submits forms marked data-ctrl-enter,
//   single-letter shortcuts click elements marked data-shortcut when no field has focus.

function typingInField(target) {
  return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    const form = event.target.closest && event.target.closest("form[data-ctrl-enter]");
    if (form) {
      event.preventDefault();
      form.requestSubmit();
    }
    return;
  }
  if (typingInField(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "/") {
    const box = document.querySelector("#q, input[type=search]");
    if (box) {
      event.preventDefault();
      box.focus();
      box.select();
    }
    return;
  }
  const target = document.querySelector(`[data-shortcut="${CSS.escape(event.key.toLowerCase())}"]`);
  if (target) {
    event.preventDefault();
    if (typingInField(target)) target.focus();
    else target.click();
  }
});
