/* The console's only script: dialogs, the drawer, copy buttons, action menus
 * and toasts. No inline handlers anywhere (a strict CSP is coming): everything
 * is wired here by delegation on data- attributes. */
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

  function focusFirst(panel) {
    var target = panel.querySelector(
      "[data-autofocus], [aria-invalid='true'], [autofocus], [data-copy]"
    );
    if (target) target.focus();
  }

  htmx.onLoad(function (elt) {
    if (elt.matches && elt.matches("dialog[data-dialog]")) openDialog(elt);
    // A dialog panel swapped in after a POST: errors, a conflict or the reveal.
    if (elt.matches && elt.matches(".dialog__panel")) focusFirst(elt);
  });

  // <dialog> "close" does not bubble: listen in the capture phase.
  document.addEventListener(
    "close",
    function (event) {
      var dialog = event.target;
      if (dialog.matches && dialog.matches("dialog[data-dialog]")) {
        // Removed, not hidden: a closed reveal must not keep a secret in the DOM.
        dialog.remove();
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
})();
