// Progressive enhancement only: every page works without this file.
// "/" moves focus to the search box (as on many sites), unless the user is typing.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    var tag = target && target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable)) return;
    var box = document.getElementById("q") || document.getElementById("quick-q");
    if (box) {
      event.preventDefault();
      box.focus();
      box.select();
    }
  });
  // The facet selects submit on change for mouse users; keyboard users still have the button.
  var form = document.querySelector("form.search");
  if (form) {
    form.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () { form.submit(); });
    });
  }
})();
