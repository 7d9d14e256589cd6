// Kindred page behaviour that htmx does not cover. No inline script anywhere (the CSP forbids it): everything the
// pages need is wired here from data attributes.
(function () {
  "use strict";

  const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

  // Times are sent as UTC; show them in the reader's own time zone.
  function localiseTimes(root) {
    root.querySelectorAll("time[datetime]").forEach((el) => {
      const when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) {
        el.textContent = timeFormat.format(when);
        el.title = when.toString();
      }
    });
  }

  // What is yours is decided in the page, not on the server, so one rendering of a post serves every viewer.
  function markMine(root) {
    const me = document.body.dataset.me;
    if (!me) return;
    root.querySelectorAll(".post[data-author]").forEach((el) => {
      el.classList.toggle("mine", el.dataset.author === me);
    });
    if (root.matches && root.matches(".post[data-author]")) root.classList.toggle("mine", root.dataset.author === me);
  }

  function enhance(root) {
    localiseTimes(root);
    markMine(root);
  }
  window.kindredEnhance = enhance;

  document.addEventListener("DOMContentLoaded", () => {
    enhance(document);
    const focus = document.body.dataset.focus && document.getElementById(document.body.dataset.focus);
    if (focus) {
      focus.classList.add("focused");
      focus.scrollIntoView({ block: "center" });
    }
  });
  document.addEventListener("htmx:load", (e) => enhance(e.target));

  document.addEventListener("click", (e) => {
    const copy = e.target.closest("[data-copy]");
    if (copy) {
      const field = document.querySelector(copy.dataset.copy);
      if (field) {
        field.select();
        const done = () => {
          copy.textContent = "Copied";
          setTimeout(() => (copy.textContent = "Copy link"), 2000);
        };
        if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, done);
        else done();
      }
    }
    const clear = e.target.closest("[data-clear]");
    if (clear) {
      const target = document.querySelector(clear.dataset.clear);
      if (target) target.innerHTML = "";
    }
  });

  // Our own new post can reach us twice: over the socket (delivered the moment it commits) and as the answer to
  // the form. Whichever comes second is dropped, so a post never shows up twice.
  document.addEventListener("htmx:beforeSwap", (e) => {
    const text = e.detail.serverResponse || "";
    const match = /^\s*<article[^>]*\bid="(post-[0-9a-f-]+)"/.exec(text);
    if (match && document.getElementById(match[1])) e.detail.shouldSwap = false;
  });

  // After a successful post or reply: empty the composer, drop the inline reply form, clear old errors.
  document.addEventListener("htmx:afterRequest", (e) => {
    const form = e.target.closest && e.target.closest("form");
    if (!form || !e.detail.successful) return;
    const error = document.getElementById(form.id + "-error");
    if (error) error.innerHTML = "";
    if (form.classList.contains("resets")) {
      form.reset();
      if (form.classList.contains("reply-form")) form.parentElement.innerHTML = "";
    }
    const empty = document.getElementById("empty-room");
    if (empty && form.id === "composer") empty.remove();
  });

  // Ctrl/Cmd+Enter sends from any textarea in a form.
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && e.target.matches("form textarea")) {
      e.preventDefault();
      e.target.form.requestSubmit();
    }
  });
})();
