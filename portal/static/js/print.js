// The enrolment slip's "Print" button (shown only with JavaScript; the browser's own Print
// does the same: the print style sheet keeps only the slip).
document.querySelectorAll("[data-print]").forEach((button) => {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
});
