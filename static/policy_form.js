// Policy run form: show only the chosen algorithm's fields (all are shown without JS; the
// server reads only the chosen algorithm's `algo.field` inputs either way).
(function () {
  "use strict";
  var select = document.getElementById("policy-algorithm");
  if (!select) return;
  var sets = document.querySelectorAll("#new-policy fieldset[data-algorithm]");
  function show() {
    Array.prototype.forEach.call(sets, function (fs) {
      var on = fs.getAttribute("data-algorithm") === select.value;
      fs.hidden = !on;
      fs.disabled = !on;
    });
  }
  select.addEventListener("change", show);
  show();
})();
