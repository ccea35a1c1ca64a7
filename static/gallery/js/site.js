// Every page: the narrow-screen menu button (the menu is plain links without JavaScript).
(function () {
  "use strict";
  const header = document.getElementById("site-header");
  const button = document.getElementById("menu-toggle");
  if (!header || !button) return;
  header.classList.add("has-menu-toggle");
  button.hidden = false;
  button.addEventListener("click", function () {
    const open = header.classList.toggle("menu-open");
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });
})();
