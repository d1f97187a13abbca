/* Builds payloadhook's Cockpit page into build/cockpit/ (or the directory given as the first
 * argument): the page's own files as they are, and patternfly.css, PatternFly 5's stylesheet
 * (@patternfly/patternfly, pinned by package-lock.json; `npm ci` installs it) made of its base
 * and the components the page uses only. Its text fonts are Cockpit's own (cockpit-ws serves
 * them at /cockpit/static/fonts, as Cockpit's pages use them); the one font shipped is Font
 * Awesome's solid icons, for the alerts' icons. Run by `npm run build`, the package builds
 * (debian/rules, packaging/payloadhook.spec) and tests/run-all; no bundler, no dev server. */
"use strict";

const fs = require("fs");
const path = require("path");

const here = __dirname;
const top = path.dirname(here);
const out = path.resolve(top, process.argv[2] || path.join("build", "cockpit"));

/* The page's own files, copied as they are. */
const PAGE = ["manifest.json", "index.html", "payloadhook.js", "validate.js", "theme.js", "payloadhook.css"];
/* PatternFly's components the page's markup uses (components/<Name>/<file>.css). */
const COMPONENTS = [
    "Alert/alert.css", "Breadcrumb/breadcrumb.css", "Button/button.css", "Card/card.css", "Check/check.css",
    "Form/form.css", "FormControl/form-control.css", "HelperText/helper-text.css", "Label/label.css",
    "MultipleFileUpload/multiple-file-upload.css",
    "Radio/radio.css", "Table/table.css", "Title/title.css", "Toolbar/toolbar.css",
];
/* Cockpit's fonts (cockpit-ws's static/fonts), relative to a package's page. */
const COCKPIT_FONTS = "../../static/fonts/";
/* The icon font, shipped beside the stylesheet. */
const ICONS = "fa-solid-900.woff2";

function fail(message) {
    process.stderr.write("cockpit/build.js: " + message + "\n");
    process.exit(1);
}

let pf;
try {
    pf = path.dirname(require.resolve("@patternfly/patternfly/package.json", { paths: [top] }));
} catch (e) {
    fail("@patternfly/patternfly is not installed: run `npm ci` in " + top + " first (it needs npm; PatternFly's tarball is cockpit/npm/'s)");
}
const version = JSON.parse(fs.readFileSync(path.join(pf, "package.json"), "utf8")).version;
const locked = JSON.parse(fs.readFileSync(path.join(top, "package-lock.json"), "utf8"))
    .packages["node_modules/@patternfly/patternfly"].version;
if (version !== locked)
    fail("node_modules holds @patternfly/patternfly " + version + ", package-lock.json pins " + locked + ": run `npm ci`");

/* A font's @font-face rule kept, its url pointed at Cockpit's copy or at the shipped icons;
 * null for one the page does not ship (the variable fonts, which Cockpit does not serve, and
 * PatternFly's own icon font, which the page does not use). */
function fontFace(rule) {
    const url = /url\("\.\/assets\/fonts\/(RedHat(?:Display|Text|Mono))\/([A-Za-z-]+\.woff2)"\)/.exec(rule);
    if (url)
        return /VF/.test(url[2]) ? null : rule.replace(url[0], 'url("' + COCKPIT_FONTS + url[2] + '")');
    if (rule.indexOf('url("./assets/fonts/webfonts/' + ICONS + '")') >= 0)
        return rule.replace("./assets/fonts/webfonts/" + ICONS, ICONS);
    return null;
}

function base() {
    const text = fs.readFileSync(path.join(pf, "patternfly-base.css"), "utf8");
    return text.replace(/@font-face\s*\{[^}]*\}\n?/g, function (rule) { return fontFace(rule) || "" });
}

const parts = [
    "/* PatternFly " + version + " (@patternfly/patternfly, MIT License, Copyright Red Hat, Inc.;\n" +
    " * Font Awesome Free's icon font: SIL OFL 1.1): its base and the components payloadhook's page uses,\n" +
    " * built by cockpit/build.js. The text fonts are Cockpit's own (" + COCKPIT_FONTS + "). */\n",
    base(),
];
for (const component of COMPONENTS)
    parts.push("/* components/" + component + " */\n" + fs.readFileSync(path.join(pf, "components", component), "utf8"));
const css = parts.join("\n");

/* Every url() of the stylesheet is a font the page has: Cockpit's or the one shipped. */
const cockpitFonts = fs.readdirSync(path.join(pf, "assets", "fonts")).filter(function (d) { return /^RedHat/.test(d) })
    .flatMap(function (d) { return fs.readdirSync(path.join(pf, "assets", "fonts", d)) });
for (const match of css.matchAll(/url\(([^)]*)\)/g)) {
    const url = match[1].replace(/^["']|["']$/g, "");
    if (url.startsWith("data:"))
        continue;
    const ok = url === ICONS || (url.startsWith(COCKPIT_FONTS) && cockpitFonts.indexOf(url.slice(COCKPIT_FONTS.length)) >= 0);
    if (!ok)
        fail("patternfly.css would load " + url + ", which the page does not ship");
}

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
for (const name of PAGE)
    fs.copyFileSync(path.join(here, name), path.join(out, name));
fs.writeFileSync(path.join(out, "patternfly.css"), css);
fs.copyFileSync(path.join(pf, "assets", "fonts", "webfonts", ICONS), path.join(out, ICONS));
process.stdout.write("built " + path.relative(process.cwd(), out) + "/ (PatternFly " + version + ")\n");
