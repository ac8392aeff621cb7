/* The console's only script: dialogs, the drawer, copy buttons, action menus,
 * toasts, local times and the permission presets. No inline handlers anywhere
 * (the Content-Security-Policy allows no inline script): everything is wired
 * here by delegation on data- attributes, and every page works without it. */
(function () {
  "use strict";

  // -- dialogs ---------------------------------------------------------------
  // An htmx GET appends <dialog data-dialog> to <body>; open it as a modal.
  function openDialog(dialog) {
    document.querySelectorAll("dialog[data-dialog]").forEach(function (other) {
      if (other !== dialog && other.id === dialog.id) other.remove();
    });
    if (!dialog.open) dialog.showModal();
  }

  // Where focus goes in a dialog panel, best first: a notice that must be read
  // (an edit conflict), the first field in error (wherever it is: it may be
  // far below the fold), then the field meant to be typed in first.
  var FOCUS_ORDER = [
    "[data-autofocus]",
    "[aria-invalid='true']",
    ".field--error input:not([type=hidden]), .field--error textarea, .field--error select",
    "[autofocus]",
    "[data-copy]",
  ];

  function focusFirst(panel) {
    for (var i = 0; i < FOCUS_ORDER.length; i++) {
      var target = panel.querySelector(FOCUS_ORDER[i]);
      if (target) {
        target.focus();
        if (target.scrollIntoView) target.scrollIntoView({ block: "center" });
        return;
      }
    }
  }

  htmx.onLoad(function (elt) {
    if (!elt.querySelectorAll) return;
    localTimes(elt);
    if (elt.matches("dialog[data-dialog]")) {
      openDialog(elt);
      // showModal() focuses [autofocus] itself; a full-page form with errors
      // and a dialog opened on an error both want the first error instead.
      if (elt.querySelector("[aria-invalid='true'], .field--error")) focusFirst(elt);
    }
    // A dialog panel swapped in after a POST: errors, a conflict or the reveal.
    if (elt.matches(".dialog__panel")) focusFirst(elt);
    // A dialog's form as a whole page (no htmx), sent back with errors.
    var page = elt.querySelector(".dialog-page");
    if (page && page.querySelector("[aria-invalid='true'], .field--error")) focusFirst(page);
    // The drawer opened beside the list: take focus there, for keyboards and
    // screen readers; closing it gives focus back to the row (below).
    if (elt.matches("#drawer-slot") || elt.matches("[data-drawer]")) {
      var heading = document.querySelector("[data-drawer] #drawer-title");
      if (heading) heading.focus();
    }
  });

  // What opened the dialog, to give focus back to when it closes. The browser
  // tries, but the opener is often gone or hidden by then: a menu item of a
  // closed menu, a row the list has redrawn, a drawer that has reloaded.
  var opener = null;
  document.addEventListener(
    "click",
    function (event) {
      var link = event.target.closest && event.target.closest("[hx-target='body'][href]");
      if (link) opener = { el: link, href: link.getAttribute("href") };
    },
    true
  );

  function visible(el) {
    if (!el || !el.isConnected) return false;
    // The items of a closed menu keep their boxes (content-visibility).
    if (el.checkVisibility) return el.checkVisibility({ contentVisibilityAuto: true });
    return el.getClientRects().length > 0;
  }

  var lastClosed = null;

  function restoreFocus(was) {
    var active = document.activeElement;
    if (active && active !== document.body && visible(active)) return;
    var menu = was.el.closest && was.el.closest("details[data-menu]");
    var candidates = [
      was.el,
      menu && menu.querySelector("summary"),
      document.querySelector("[data-drawer] [href='" + was.href + "']"),
    ];
    // The row of the client the dialog was about, if the list shows it.
    document.querySelectorAll("[data-client-link]").forEach(function (link) {
      if (was.href.indexOf(link.getAttribute("href")) === 0) {
        candidates.push(link.closest("tr") && link.closest("tr").querySelector("summary"));
        candidates.push(link);
      }
    });
    candidates.push(document.querySelector("[data-drawer] #drawer-title"));
    for (var i = 0; i < candidates.length; i++) {
      if (visible(candidates[i])) {
        candidates[i].focus();
        if (document.activeElement === candidates[i]) return;
      }
    }
  }

  // <dialog> "close" does not bubble: listen in the capture phase.
  document.addEventListener(
    "close",
    function (event) {
      var dialog = event.target;
      if (dialog.matches && dialog.matches("dialog[data-dialog]")) {
        // Removed, not hidden: a closed reveal must not keep a secret in the DOM.
        dialog.remove();
        if (opener) {
          lastClosed = opener;
          lastClosed.at = Date.now();
          opener = null;
          restoreFocus(lastClosed);
        }
      }
    },
    true
  );

  document.addEventListener(
    "cancel",
    function (event) {
      // Escape closes dialogs, except the one-time reveal: losing it by a
      // stray key press would force a secret reset. "Done" closes it.
      if (event.target.querySelector && event.target.querySelector("[data-dialog-locked]")) {
        event.preventDefault();
      }
    },
    true
  );

  document.body.addEventListener("closeDialog", function (event) {
    var dialog = event.target.closest && event.target.closest("dialog");
    if (dialog) dialog.close();
  });

  // The list and the drawer redraw themselves after a save: focus that was on
  // a part of them is put back on the new one.
  document.body.addEventListener("htmx:afterSettle", function () {
    if (lastClosed && Date.now() - lastClosed.at < 5000) restoreFocus(lastClosed);
  });

  // -- clicks ----------------------------------------------------------------
  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-dialog-close]");
    if (closer) {
      var dialog = closer.closest("dialog");
      if (dialog) dialog.close();
      return;
    }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      copyValue(copy);
      return;
    }
    // Menus: an item was chosen, or the click was elsewhere.
    document.querySelectorAll("details[data-menu][open]").forEach(function (menu) {
      var summary = menu.querySelector("summary");
      if (!summary.contains(event.target)) menu.open = false;
    });
  });

  // Only one actions menu open at a time.
  document.addEventListener(
    "toggle",
    function (event) {
      var menu = event.target;
      if (!menu.matches || !menu.matches("details[data-menu]") || !menu.open) return;
      document.querySelectorAll("details[data-menu][open]").forEach(function (other) {
        if (other !== menu) other.open = false;
      });
      placeMenu(menu);
    },
    true
  );

  // An open menu is placed against the window, not inside the table's card:
  // the card scrolls sideways on narrow screens, which clips anything that
  // sticks out of it (a list of one client would hide its own menu). Below
  // its button, or above it when the window has no room below.
  function placeMenu(menu) {
    var items = menu.querySelector(".menu__items");
    var button = menu.querySelector("summary");
    if (!items || !button) return;
    items.classList.add("menu__items--placed");
    var around = button.getBoundingClientRect();
    var height = items.offsetHeight;
    var top = around.bottom + 4;
    if (top + height > window.innerHeight - 8 && around.top - 4 - height >= 8) {
      top = around.top - 4 - height;
    }
    items.style.top = top + "px";
    items.style.left = Math.max(8, around.right - items.offsetWidth) + "px";
  }

  function closeMenus() {
    document.querySelectorAll("details[data-menu][open]").forEach(function (menu) {
      menu.open = false;
    });
  }
  // A placed menu would not follow its button: scrolling or resizing closes it.
  window.addEventListener("resize", closeMenus);
  document.addEventListener(
    "scroll",
    function (event) {
      if (event.target.closest && event.target.closest(".menu__items")) return;
      closeMenus();
    },
    true
  );

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || document.querySelector("dialog[open]")) return;
    var menu = document.querySelector("details[data-menu][open]");
    if (menu) {
      menu.open = false;
      menu.querySelector("summary").focus();
      return;
    }
    var close = document.querySelector("[data-drawer] [data-drawer-close]");
    if (close) close.click();
  });

  // -- drawer focus ----------------------------------------------------------
  // Closing the drawer swaps the whole #page (the list as it was left): focus
  // would fall to <body>. Give it to the row of the client the drawer showed,
  // or to the page heading when that row is not on the page.
  var returnFocusTo = null;
  document.addEventListener(
    "click",
    function (event) {
      var close = event.target.closest && event.target.closest("[data-drawer-close]");
      if (!close) return;
      var drawer = close.closest("[data-drawer]");
      returnFocusTo = drawer ? drawer.getAttribute("data-client-id") || "" : "";
    },
    true
  );
  document.body.addEventListener("htmx:afterSettle", function () {
    if (returnFocusTo === null || document.querySelector("[data-drawer]")) return;
    var clientId = returnFocusTo;
    returnFocusTo = null;
    var target = null;
    document.querySelectorAll("[data-client-link]").forEach(function (link) {
      if (!target && link.getAttribute("data-client-link") === clientId) target = link;
    });
    target = target || document.querySelector("#page h1");
    if (target) {
      if (target.matches("h1")) target.setAttribute("tabindex", "-1");
      target.focus();
    }
  });

  // -- copy buttons ----------------------------------------------------------
  function copyValue(button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    var label = button.querySelector("[data-copy-label]") || button;
    var container = button.closest(".copy-field") || button.parentNode;
    var status = container.querySelector("[data-copy-status]");
    var name = (container.querySelector("label") || {}).textContent || "Value";

    function done(ok) {
      label.textContent = ok ? "Copied" : "Press Ctrl+C";
      if (status) {
        status.textContent = ok
          ? name + " copied to the clipboard."
          : name + " is selected: press Ctrl+C (or Cmd+C) to copy it.";
      }
      window.clearTimeout(button._copyTimer);
      button._copyTimer = window.setTimeout(function () {
        label.textContent = "Copy";
      }, 2500);
    }

    function fallback() {
      // No clipboard API (plain HTTP, or permission denied): select the text
      // so that the user can copy it with the keyboard.
      field.focus();
      field.select();
      var ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (e) {
        ok = false;
      }
      done(ok);
    }

    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(function () {
        done(true);
      }, fallback);
    } else {
      fallback();
    }
  }

  // -- drawer ----------------------------------------------------------------
  // After a dialog saves: reload the open drawer, or close it when the client
  // it shows was deleted.
  document.body.addEventListener("apiClientsChanged", function (event) {
    var drawer = document.querySelector("[data-drawer]");
    if (!drawer) return;
    var deleted = event.detail && event.detail.deleted;
    if (deleted && deleted === drawer.getAttribute("data-client-id")) {
      drawer.querySelector("[data-drawer-close]").click();
      return;
    }
    var close = drawer.querySelector("[data-drawer-close]");
    htmx.ajax("GET", drawer.getAttribute("data-refresh-url"), {
      target: "#drawer-slot",
      swap: "innerHTML",
      // Keep closing onto the list as the user left it (search, sort, page).
      values: { back: close.getAttribute("href") },
    });
  });

  // -- toasts ----------------------------------------------------------------
  function toast(message, kind) {
    var region = document.getElementById("toasts");
    if (!region) return;
    var item = document.createElement("p");
    item.className = "toast" + (kind ? " toast--" + kind : "");
    item.textContent = message;
    region.appendChild(item);
    window.setTimeout(function () {
      item.classList.add("toast--leaving");
      window.setTimeout(function () {
        item.remove();
      }, 300);
    }, 4000);
  }

  document.body.addEventListener("showToast", function (event) {
    if (event.detail && event.detail.message) toast(event.detail.message);
  });

  // -- htmx edge cases -------------------------------------------------------
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    // The session expired: the request was redirected to the sign-in page.
    // Go there for real instead of swapping it into a dialog or the list.
    var url = event.detail.xhr.responseURL || "";
    if (url.indexOf("/accounts/login/") !== -1) {
      event.detail.shouldSwap = false;
      window.location.href = url;
    }
  });

  document.body.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    var message =
      status === 404
        ? "That API client no longer exists. The list has been refreshed."
        : status === 403
          ? "You do not have permission to do that."
          : "Something went wrong (" + status + "). Please try again.";
    toast(message, "error");
    if (status !== 404) return;
    document.querySelectorAll("dialog[open]").forEach(function (dialog) {
      dialog.close();
    });
    var close = document.querySelector("[data-drawer] [data-drawer-close]");
    // Closing the drawer reloads the list; without a drawer, refresh it.
    if (close) close.click();
    else htmx.trigger(document.body, "apiClientsChanged");
  });

  document.body.addEventListener("htmx:sendError", function () {
    toast("Could not reach the server. Check your connection and try again.", "error");
  });
  // -- times -----------------------------------------------------------------
  // The server writes UTC (the fallback text says so) in <time datetime>;
  // here it becomes the viewer's own time zone, named, and "3 minutes ago"
  // where recency matters (data-when="relative" or "both").
  var dateOnly = window.Intl && Intl.DateTimeFormat
    ? new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" })
    : null;
  var clockOnly = window.Intl && Intl.DateTimeFormat
    ? new Intl.DateTimeFormat(undefined, {
        hour: "2-digit",
        minute: "2-digit",
        timeZoneName: "short",
      })
    : null;
  var relative = window.Intl && Intl.RelativeTimeFormat
    ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" })
    : null;
  var UNITS = [
    ["year", 365 * 24 * 3600],
    ["month", 30 * 24 * 3600],
    ["week", 7 * 24 * 3600],
    ["day", 24 * 3600],
    ["hour", 3600],
    ["minute", 60],
  ];

  function ago(date) {
    var seconds = (date.getTime() - Date.now()) / 1000;
    if (Math.abs(seconds) < 60) return seconds <= 0 ? "just now" : "in under a minute";
    for (var i = 0; i < UNITS.length; i++) {
      if (Math.abs(seconds) >= UNITS[i][1] || i === UNITS.length - 1) {
        return relative.format(Math.round(seconds / UNITS[i][1]), UNITS[i][0]);
      }
    }
    return "";
  }

  function part(text, name) {
    var span = document.createElement("span");
    span.className = name;
    span.textContent = text;
    return span;
  }

  function localTimes(root) {
    if (!dateOnly) return;
    var times = root.matches && root.matches("time[datetime][data-when]") ? [root] : [];
    root.querySelectorAll("time[datetime][data-when]").forEach(function (t) {
      times.push(t);
    });
    times.forEach(function (time) {
      var date = new Date(time.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      var day = dateOnly.format(date);
      var clock = clockOnly.format(date);
      var mode = time.getAttribute("data-when");
      if (mode === "relative" && relative) {
        time.textContent = ago(date);
        time.title = day + " " + clock;
        return;
      }
      // The end of a span on the day it began: the clock is enough.
      var from = mode === "until" && new Date(time.getAttribute("data-from") || "");
      if (from && !isNaN(from.getTime()) && dateOnly.format(from) === day) {
        time.textContent = clock;
        return;
      }
      // Two parts, so that a narrow table cell can put the clock under the day.
      time.textContent = "";
      time.appendChild(part(day, "time__day"));
      time.appendChild(document.createTextNode(" "));
      time.appendChild(part(clock, "time__clock"));
      if (mode === "both" && relative) time.appendChild(document.createTextNode(" (" + ago(date) + ")"));
    });
  }
  localTimes(document.body);
  // "3 minutes ago" stays true while the page stays open.
  window.setInterval(function () {
    localTimes(document.body);
  }, 30000);

  // -- permission matrix -----------------------------------------------------
  // Write implies read (the server saves both): ticking Write ticks Read, and
  // clearing Read clears Write, so that the boxes show what will be saved.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("input[name=grants]")) return;
    var api = box.value.replace(/:(read|write)$/, "");
    var form = box.form;
    if (!form) return;
    var read = form.querySelector("input[name=grants][value='" + api + ":read']");
    var write = form.querySelector("input[name=grants][value='" + api + ":write']");
    if (box === write && write.checked && read) read.checked = true;
    if (box === read && !read.checked && write) write.checked = false;
    presetState(form);
  });

  // Presets fill the matrix; the admin can still change any box after.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-preset]");
    if (!button || !button.form) return;
    var grants = (button.getAttribute("data-preset") || "").split(" ");
    button.form.querySelectorAll("input[name=grants]").forEach(function (box) {
      box.checked = grants.indexOf(box.value) !== -1;
    });
    presetState(button.form);
    var status = button.form.querySelector("[data-preset-status]");
    if (status) status.textContent = button.textContent.trim() + ": permissions filled in below.";
  });

  // The preset whose grants are exactly the ticked boxes is shown pressed.
  function presetState(form) {
    var ticked = [];
    form.querySelectorAll("input[name=grants]:checked").forEach(function (box) {
      ticked.push(box.value);
    });
    var key = ticked.sort().join(" ");
    form.querySelectorAll("[data-preset]").forEach(function (button) {
      var grants = button.getAttribute("data-preset").split(" ").filter(Boolean).sort().join(" ");
      button.setAttribute("aria-pressed", grants === key ? "true" : "false");
    });
  }

  // A column header sorted the list: the search form's sort menu follows,
  // so that the next search keeps that order.
  htmx.onLoad(function (elt) {
    var sort = elt.getAttribute && elt.getAttribute("data-sort");
    var menu = document.getElementById("sort");
    if (sort && menu) menu.value = sort;
  });

  htmx.onLoad(function (elt) {
    if (!elt.querySelectorAll) return;
    elt.querySelectorAll("[data-presets]").forEach(function (presets) {
      presets.hidden = false; // buttons that need this script appear with it
      var form = presets.closest("form");
      if (form) presetState(form);
    });
  });
})();
