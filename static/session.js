// Logging out forgets this browser's work in progress (drafts and unsent judgments are kept in
// localStorage under "prefloop:"): the next person at this computer must not find them.
(function () {
  "use strict";
  function forgetDrafts() {
    try {
      for (const key of Object.keys(localStorage)) {
        if (key.startsWith("prefloop:")) localStorage.removeItem(key);
      }
    } catch {
      /* storage disabled: nothing was kept */
    }
  }
  for (const form of document.querySelectorAll("form.logout")) {
    form.addEventListener("submit", forgetDrafts);
  }
  if (new URLSearchParams(location.search).has("logged_out")) forgetDrafts();
})();
