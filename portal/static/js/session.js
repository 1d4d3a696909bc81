// Staff pages: warn before the idle timeout (with "Stay signed in"), note the page each form is
// on (so a form posted after the session ended can be kept and brought back here), and fill a
// kept form in again after sign-in. Nothing here submits a form.
(function () {
  "use strict";
  var box = document.getElementById("session-timeout");
  if (!box) { return; }
  var idle = parseInt(box.getAttribute("data-idle-seconds"), 10) || 0;
  // Warn a few minutes before: five minutes, or a third of a short idle timeout.
  var lead = Math.min(300, Math.floor(idle / 3));
  var warnTimer = null;
  var endTimer = null;

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || "";
    } catch (e) {
      return "";
    }
  }

  function show(which) {
    box.querySelectorAll("[data-when]").forEach(function (el) {
      el.hidden = el.getAttribute("data-when") !== which;
    });
    box.setAttribute("role", "alert");
    box.hidden = false;
  }

  function hide() {
    box.hidden = true;
    box.removeAttribute("role");
  }

  function schedule() {
    clearTimeout(warnTimer);
    clearTimeout(endTimer);
    hide();
    if (!idle) { return; }
    var deadline = new Date(Date.now() + idle * 1000);
    box.querySelector("[data-slot=deadline]").textContent =
      deadline.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    warnTimer = setTimeout(function () {
      show("warning");
      var stay = box.querySelector("[data-action=stay]");
      if (stay) { stay.focus(); }
    }, Math.max(0, idle - lead) * 1000);
    endTimer = setTimeout(function () { show("ended"); }, idle * 1000);
  }

  box.querySelector("[data-action=stay]").addEventListener("click", function () {
    fetch("/auth/session/extend", {
      method: "POST", credentials: "same-origin", redirect: "manual",
      headers: { "x-csrftoken": csrfToken(), "accept": "application/json" }
    }).then(function (response) {
      if (response.ok) { schedule(); } else { show("ended"); }
    }, function () { show("ended"); });
  });
  // Any answer from the server to this page counts as activity there too.
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.successful) { schedule(); }
  });

  function notePage(root) {
    var page = location.pathname + location.search.replace(/([?&])kept=1(&|$)/, "$1")
      .replace(/[?&]$/, "");
    root.querySelectorAll("form").forEach(function (form) {
      if ((form.getAttribute("method") || "").toLowerCase() !== "post") { return; }
      if (form.querySelector("input[name=_kept_page]")) { return; }
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "_kept_page";
      input.value = page;
      form.appendChild(input);
    });
  }

  function fill(form, fields) {
    var seen = {};
    fields.forEach(function (pair) {
      var name = pair[0], value = pair[1];
      var all = Array.prototype.filter.call(form.elements, function (el) {
        return el.name === name;
      });
      all.forEach(function (el) {
        var type = (el.type || "").toLowerCase();
        if (type === "checkbox" || type === "radio") {
          if (el.value === value) { el.checked = true; }
        } else if (el.tagName === "SELECT" && el.multiple) {
          Array.prototype.forEach.call(el.options, function (o) {
            if (o.value === value) { o.selected = true; }
          });
        }
      });
      var plain = all.filter(function (el) {
        var type = (el.type || "").toLowerCase();
        return type !== "checkbox" && type !== "radio" && type !== "hidden" &&
          type !== "file" && type !== "submit" && type !== "button" &&
          !(el.tagName === "SELECT" && el.multiple);
      });
      var n = seen[name] || 0;
      if (plain[n]) { plain[n].value = value; }
      seen[name] = n + 1;
    });
  }

  function clearChecks(form, fields) {
    // A box kept unticked must show unticked, whatever the page ticked by default.
    var names = {};
    fields.forEach(function (pair) { names[pair[0]] = true; });
    Array.prototype.forEach.call(form.elements, function (el) {
      var type = (el.type || "").toLowerCase();
      if ((type === "checkbox" || type === "radio") && el.name) { el.checked = false; }
    });
    return names;
  }

  function trimmed(path) { return path.replace(/\/+$/, ""); }

  function restore() {
    if (!/[?&]kept=1(&|$)/.test(location.search)) { return; }
    history.replaceState(null, "", location.pathname +
      location.search.replace(/([?&])kept=1(&|$)/, "$1").replace(/[?&]$/, "") + location.hash);
    function showMissing() {
      var missing = document.getElementById("kept-form-missing");
      missing.setAttribute("role", "status");
      missing.hidden = false;
    }
    fetch("/auth/kept-form", { credentials: "same-origin", headers: { accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (kept) {
        var form = null;
        if (kept) {
          form = Array.prototype.find.call(document.querySelectorAll("form"), function (f) {
            return (f.getAttribute("method") || "").toLowerCase() === "post" &&
              trimmed(new URL(f.action, location.href).pathname) === trimmed(kept.action);
          });
        }
        if (!form) { showMissing(); return; }
        clearChecks(form, kept.fields);
        fill(form, kept.fields);
        var notice = document.getElementById("kept-form-notice");
        notice.setAttribute("role", "status");
        notice.hidden = false;
        notice.focus();
      }, function () { showMissing(); });
  }

  notePage(document);
  document.body.addEventListener("htmx:load", function (event) { notePage(event.target); });
  schedule();
  restore();
})();
