// The bulk form shows only the field its operation uses, and asks before a merge.
const form = document.getElementById("bulk-form");
if (form) {
  const operation = form.querySelector("#bulk-operation");
  const fields = {
    assign: form.querySelector("#bulk-assignee"),
    category: form.querySelector("#bulk-category"),
    status: form.querySelector("#bulk-status"),
  };
  const sync = () => {
    for (const [name, select] of Object.entries(fields)) {
      select.closest("label").hidden = operation.value !== name;
    }
  };
  operation.addEventListener("change", sync);
  sync();
  form.addEventListener("submit", (event) => {
    if (operation.value === "merge" && !window.confirm("選んだ問合せを最も古い問合せに統合します。よろしいですか？")) {
      event.preventDefault();
    }
  });
}
