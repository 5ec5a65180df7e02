// The month picker goes to one municipality's month, or to all of them side by side.
const form = document.getElementById("analysis-pick");
if (form) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const municipality = document.getElementById("pick-municipality").value;
    const month = document.getElementById("pick-month").value;
    const query = month ? `?month=${encodeURIComponent(month)}` : "";
    const base =
      municipality === "all"
        ? form.dataset.overviewUrl
        : form.dataset.monthUrlTemplate.replace("/0/", `/${encodeURIComponent(municipality)}/`);
    window.location.assign(base + query);
  });
}
