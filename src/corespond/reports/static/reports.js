// The reports page: the period chooser shows (and sends) only the fields of the kind chosen,
// and the print button prints. Without this script every field shows and the kind decides.
"use strict";
const kind = document.getElementById("period");

function showKind() {
  for (const field of document.querySelectorAll(".field[data-kind]")) {
    const on = field.dataset.kind === kind.value;
    field.hidden = !on;
    for (const input of field.querySelectorAll("input")) input.disabled = !on;
  }
}

kind.addEventListener("change", showKind);
showKind();

const print = document.getElementById("print");
if (print) {
  print.hidden = false;
  print.addEventListener("click", () => window.print());
}
