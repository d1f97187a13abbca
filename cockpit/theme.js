/* Light or dark, as the Cockpit shell is: its choice is in localStorage "shell:style"
 * (auto, light or dark; auto follows the browser's prefers-color-scheme). The shell tells
 * open pages of a change by a "storage" event, or by a "cockpit-style" event in the same
 * window. Both class names are set: pf-v5-theme-dark (PatternFly 5, Cockpit 300 and later)
 * and pf-theme-dark (PatternFly 4, Cockpit 287). */
(function () {
    "use strict";
    const query = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

    function apply(style) {
        let chosen = style;
        if (!chosen) {
            try {
                chosen = window.localStorage.getItem("shell:style");
            } catch (e) {
                chosen = null; /* storage closed to this page: follow the browser */
            }
        }
        chosen = chosen || "auto";
        const dark = chosen === "dark" || (chosen === "auto" && query !== null && query.matches);
        const root = document.documentElement;
        root.classList.toggle("pf-v5-theme-dark", dark);
        root.classList.toggle("pf-theme-dark", dark);
    }

    window.addEventListener("storage", function (event) {
        if (event.key === "shell:style")
            apply();
    });
    window.addEventListener("cockpit-style", function (event) {
        if (event instanceof CustomEvent && event.detail)
            apply(event.detail.style);
    });
    if (query !== null && query.addEventListener)
        query.addEventListener("change", function () { apply(); });
    apply();
}());
