// The optional drawn signature on the consent form. The typed name and the agreement box are
// the signature; a drawing, when there is one, goes into the signed PDF copy. Without
// JavaScript the drawing area stays hidden and the form works as before.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const pad of document.querySelectorAll("[data-signature-pad]")) {
    const canvas = pad.querySelector("canvas");
    const field = pad.querySelector("input[type=hidden]");
    const context = canvas.getContext("2d");
    context.lineWidth = 3;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.strokeStyle = "#111";
    let drawing = false;
    let marked = false;

    const at = (event) => {
      const box = canvas.getBoundingClientRect();
      return [(event.clientX - box.left) * canvas.width / box.width,
              (event.clientY - box.top) * canvas.height / box.height];
    };
    canvas.addEventListener("pointerdown", (event) => {
      drawing = true;
      canvas.setPointerCapture(event.pointerId);
      context.beginPath();
      context.moveTo(...at(event));
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!drawing) return;
      context.lineTo(...at(event));
      context.stroke();
      marked = true;
    });
    const stop = () => {
      if (drawing && marked) field.value = canvas.toDataURL("image/png");
      drawing = false;
    };
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
    pad.querySelector("[data-clear]").addEventListener("click", () => {
      context.clearRect(0, 0, canvas.width, canvas.height);
      field.value = "";
      marked = false;
    });
    pad.hidden = false;
  }
});
