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

  // Whether *you* like a post is the article's `liked` class: set in the page you loaded, and by the answer to
  // your own click (a kindred:liked event on the button), never by the like state shared with everyone.
  function syncLikeButtons(root) {
    root.querySelectorAll(".like-button").forEach((button) => {
      const article = button.closest(".post");
      button.setAttribute("aria-pressed", article && article.classList.contains("liked") ? "true" : "false");
    });
  }
  document.addEventListener("kindred:liked", (e) => {
    const article = e.target.closest(".post");
    if (!article) return;
    article.classList.toggle("liked", Boolean(e.detail.liked));
    syncLikeButtons(article);
  });

  // In a drop-in, the member whose post the coach spotlights is told it is their turn.
  function markYourTurn(root) {
    const me = document.body.dataset.me;
    if (!me) return;
    root.querySelectorAll(".youre-up[data-for]").forEach((el) => {
      el.hidden = el.dataset.for !== me;
    });
    root.querySelectorAll("[data-not-for]").forEach((el) => {
      el.hidden = el.dataset.notFor === me;
    });
  }

  // Themes this reader collapses (docs/care.md): the server collapses them when it renders the page for the reader;
  // a post arriving live was rendered once for everyone, so it is collapsed here, by the same rule (the theme as a
  // whole word or phrase of the post's text, case-folded), with the same disclosure.
  function collapseThemes(root) {
    const threads = document.getElementById("threads");
    let themes = [];
    try {
      themes = JSON.parse((threads && threads.dataset.collapseThemes) || "[]");
    } catch (err) {
      return;
    }
    if (!themes.length) return;
    const rules = themes.map((theme) => [theme, new RegExp("(?<![\\p{L}\\p{N}_])" +
      theme.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "(?![\\p{L}\\p{N}_])", "u")]);
    const articles = Array.from(root.querySelectorAll("article.post"));
    if (root.matches && root.matches("article.post")) articles.unshift(root);
    articles.forEach((article) => {
      const main = article.querySelector(".post-main");
      if (!main || main.querySelector("details.content-note")) return;
      const parts = Array.from(main.querySelectorAll(":scope > .body, :scope > .experiment-card"));
      if (!parts.length) return;
      const text = parts.map((part) => part.textContent).join(" ").toLowerCase();
      const hit = rules.find(([, rule]) => rule.test(text));
      if (!hit) return;
      const details = document.createElement("details");
      details.className = "content-note";
      const summary = document.createElement("summary");
      const label = document.createElement("span");
      label.className = "cn-label";
      label.textContent = "A theme you collapse:";
      const open = document.createElement("span");
      open.className = "cn-open";
      open.textContent = "· open the post";
      summary.append(label, " " + hit[0] + " ", open);
      details.append(summary);
      parts[0].before(details);
      parts.forEach((part) => details.append(part));
    });
  }

  function enhance(root) {
    localiseTimes(root);
    markMine(root);
    syncLikeButtons(root);
    markYourTurn(root);
    collapseThemes(root);
  }
  window.kindredEnhance = enhance;

  document.addEventListener("DOMContentLoaded", () => {
    enhance(document);
    // Local date-time fields are sent with the reader's offset, so the server stores the moment they meant.
    document.querySelectorAll("form[data-local-time] input[name=tz_offset]").forEach((input) => {
      input.value = String(new Date().getTimezoneOffset());
    });
    // Offer the reader's own time zone where the server still has the default.
    document.querySelectorAll("input[data-detect-timezone]").forEach((input) => {
      if (input.value === "UTC") input.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    });
    // A slider says its number as it moves (the guided composer, the debrief); without script the form still works.
    document.querySelectorAll("input[type=range][data-shows]").forEach((input) => {
      const out = document.getElementById(input.dataset.shows);
      if (!out) return;
      const show = () => {
        out.textContent = input.value;
        input.setAttribute("aria-valuetext", input.value + " out of 100");
      };
      input.addEventListener("input", show);
      show();
    });
    const focus = document.body.dataset.focus && document.getElementById(document.body.dataset.focus);
    if (focus) {
      focus.classList.add("focused");
      focus.scrollIntoView({ block: "center" });
    }
  });
  document.addEventListener("htmx:load", (e) => enhance(e.target));

  // Notification settings per circle: changing a channel of a kind that follows "as everywhere" gives it its own
  // setting there (otherwise the change would be ignored on save).
  document.addEventListener("change", (e) => {
    const box = e.target.closest && e.target.closest("input[data-own]");
    if (!box) return;
    const choice = document.querySelector('select[name="' + box.dataset.own + '"]');
    if (choice) choice.value = "own";
  });

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
    // 4xx answers are swapped in as messages (see responseHandling in base.html), so htmx calls them successful.
    if (!e.detail.successful || e.detail.xhr.status >= 400) return;
    // Success clears the message an earlier try left: beside a form, beside a button, or in the flash.
    const source = form || e.target;
    const error = source.id && document.getElementById(source.id + "-error");
    if (error) error.innerHTML = "";
    const flash = document.getElementById("flash");
    if (flash && flash.querySelector(".error")) flash.innerHTML = "";
    if (!form) return;
    // A choice in the care interstitial that sent the text on (not one that answers in the interstitial's place,
    // which the server retargets): the interstitial has done its work.
    if (form.dataset.clearOnPost && !e.detail.xhr.getResponseHeader("HX-Retarget")) {
      const slot = document.querySelector(form.dataset.clearOnPost);
      if (slot) slot.innerHTML = "";
    }
    // A small form under a post (a pin's note, a reason) goes once its work is done elsewhere on the post.
    if (form.classList.contains("slot-form") && form.parentElement) form.parentElement.innerHTML = "";
    if (form.classList.contains("resets")) {
      form.reset();
      if (form.classList.contains("reply-form")) form.parentElement.innerHTML = "";
    }
    // Focus moves to what was just sent (shown by this answer, or already by the socket), and is announced. (A post
    // sent to the journal from a room answers with a note in the composer instead, which is a status region.)
    const sent = /^\s*<article[^>]*\bid="(post-[0-9a-f-]+)"/.exec(e.detail.xhr.responseText || "");
    const empty = document.getElementById("empty-room");
    if (empty && form.id === "composer" && sent) empty.remove();
    const article = sent && document.getElementById(sent[1]);
    if (article) {
      article.tabIndex = -1;
      article.focus({ preventScroll: true });
      article.scrollIntoView({ block: "nearest" });
      const journal = document.body.dataset.roomKind === "journal";
      announce(form.classList.contains("reply-form") ? "Your reply is posted."
        : journal ? "Your post is in the journal." : "Your post is shared with the circle.");
    }
  });

  // A polite live region for what just happened (a screen reader says it when it is free).
  function announce(text) {
    const region = document.getElementById("announce");
    if (!region) return;
    region.textContent = "";
    setTimeout(() => (region.textContent = text), 50);
  }
  window.kindredAnnounce = announce;

  // @mention autocomplete: type @ and a few letters in a composer, pick an alias with the arrows and Enter (or Tab),
  // or with the mouse. The aliases come from the page (data-aliases); nothing is fetched.
  const mention = { box: null, field: null, start: 0, items: [], index: 0 };

  function aliases() {
    const holder = document.querySelector("[data-aliases]");
    try {
      return holder ? JSON.parse(holder.dataset.aliases) : [];
    } catch (err) {
      return [];
    }
  }

  function closeMentions() {
    if (mention.box) mention.box.remove();
    mention.box = null;
    mention.items = [];
    if (mention.field) mention.field.removeAttribute("aria-activedescendant");
  }

  function pickMention(alias) {
    const field = mention.field;
    const before = field.value.slice(0, mention.start);
    const after = field.value.slice(field.selectionStart);
    field.value = before + "@" + alias + " " + after;
    const caret = before.length + alias.length + 2;
    field.setSelectionRange(caret, caret);
    closeMentions();
    field.focus();
  }

  function renderMentions() {
    mention.box.innerHTML = "";
    mention.items.forEach((alias, i) => {
      const option = document.createElement("li");
      option.id = "mention-option-" + i;
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", i === mention.index ? "true" : "false");
      option.textContent = "@" + alias;
      option.addEventListener("mousedown", (e) => {
        e.preventDefault();
        pickMention(alias);
      });
      mention.box.append(option);
    });
    mention.field.setAttribute("aria-activedescendant", "mention-option-" + mention.index);
  }

  document.addEventListener("input", (e) => {
    const field = e.target;
    if (!field.matches || !field.matches("textarea[data-mentions]")) return;
    const upto = field.value.slice(0, field.selectionStart);
    const found = /(^|[^\w.@-])@([^@\n]{0,40})$/.exec(upto);
    const query = found ? found[2].toLowerCase() : null;
    const matches = query === null ? [] : aliases().filter((a) => a.toLowerCase().startsWith(query)).slice(0, 6);
    if (!matches.length) return closeMentions();
    mention.field = field;
    mention.start = upto.length - found[2].length - 1;
    mention.items = matches;
    mention.index = 0;
    if (!mention.box) {
      mention.box = document.createElement("ul");
      mention.box.className = "mention-list";
      mention.box.setAttribute("role", "listbox");
      mention.box.setAttribute("aria-label", "Mention a member");
      field.insertAdjacentElement("afterend", mention.box);
    }
    renderMentions();
  });

  document.addEventListener("keydown", (e) => {
    if (!mention.box || e.target !== mention.field) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const step = e.key === "ArrowDown" ? 1 : -1;
      mention.index = (mention.index + step + mention.items.length) % mention.items.length;
      renderMentions();
    } else if (e.key === "Enter" || e.key === "Tab") {
      e.preventDefault();
      e.stopImmediatePropagation();
      pickMention(mention.items[mention.index]);
    } else if (e.key === "Escape") {
      closeMentions();
    }
  }, true);
  document.addEventListener("focusout", (e) => {
    if (mention.field && e.target === mention.field) setTimeout(closeMentions, 100);
  });

  // The menus (the site menu, each post's "⋯"): plain <details>. Escape closes one and gives focus back to its
  // button; a tap outside closes it; choosing an action in a post's menu closes that menu.
  const MENUS = "details.nav-menu[open], details.more[open]";
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    const open = e.target.closest ? e.target.closest(MENUS) : null;
    const menu = open || document.querySelector(MENUS);
    if (!menu) return;
    menu.open = false;
    menu.querySelector("summary").focus();
  });
  document.addEventListener("click", (e) => {
    document.querySelectorAll(MENUS).forEach((menu) => {
      if (!menu.contains(e.target)) menu.open = false;
      else if (menu.matches(".more") && e.target.closest(".more-menu button")) menu.open = false;
    });
  });

  // Ctrl/Cmd+Enter sends from any textarea in a form.
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && e.target.matches("form textarea")) {
      e.preventDefault();
      e.target.form.requestSubmit();
    }
  });
})();
