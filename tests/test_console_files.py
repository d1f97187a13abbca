"""The web console's files (cockpit/, built into build/cockpit/ by packaging/build-cockpit),
without a browser: what Cockpit's Content-Security-Policy and the contract ask of them, that the
build makes the page on PatternFly's own stylesheet, and that every way of installing ships all
of the built files."""

import configparser
import json
import os
import re
from html.parser import HTMLParser

from payloadhook.install import COCKPIT_BUILD, COCKPIT_FILES
from tests.conftest import REPO

COCKPIT = os.path.join(REPO, "cockpit")
BUILT = os.path.join(REPO, COCKPIT_BUILD)
#: What the build adds to the page's own files: PatternFly's stylesheet and the icons' font.
MADE = ("patternfly.css", "fa-solid-900.woff2")


def read(name):
    with open(os.path.join(COCKPIT, name), encoding="utf-8") as stream:
        return stream.read()


def test_every_file_of_the_package_is_installed_by_install_hook_the_rpm_and_pip():
    sources = sorted(set(os.listdir(COCKPIT)) - {"build.js", "npm"})
    present = sorted(os.listdir(BUILT))
    assert sorted(COCKPIT_FILES) == present == sorted(sources + list(MADE))
    for name in sources:    # the page's own files, as they are
        assert open(os.path.join(BUILT, name), "rb").read() == open(os.path.join(COCKPIT, name), "rb").read(), name
    with open(os.path.join(REPO, "packaging", "payloadhook.spec")) as stream:
        spec = stream.read()
    for name in present:
        assert f"build/cockpit/{name}" in spec and f"%{{_datadir}}/cockpit/payloadhook/{name}" in spec
    config = configparser.ConfigParser()
    config.read(os.path.join(REPO, "setup.cfg"))
    data = config["options.data_files"]["share/payloadhook/cockpit"]
    assert sorted(os.path.basename(p.strip()) for p in data.split(",")) == present


def test_the_menu_entry_sits_beside_cockpit_machines():
    manifest = json.loads(read("manifest.json"))
    (entry,) = manifest["menu"].values()
    assert entry["label"] == "Payloads" and entry["path"] == "index.html"
    assert 60 < entry["order"] < 70    # cockpit-machines' "Virtual machines" is menu order 60
    assert int(manifest["requires"]["cockpit"]) <= 287    # Debian 12's Cockpit
    assert manifest["config"]["uri"] == "qemu:///system"    # cockpit-machines' "system" connection


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self.inline, self.handlers, self.styles = [], [], [], []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.handlers += [name for name in attrs if name.startswith("on")]
        if "style" in attrs:
            self.styles.append(tag)
        if tag == "style":
            self.styles.append("style")
        if tag == "script":
            self._in_script = True
            self.scripts.append(attrs.get("src"))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline.append(data)


def test_the_page_has_no_inline_script_handler_or_style_as_cockpits_csp_requires():
    page = _Page()
    page.feed(read("index.html"))
    assert page.inline == [] and page.handlers == [] and page.styles == []
    assert page.scripts[0] == "../base1/cockpit.js"
    assert set(page.scripts) == {"../base1/cockpit.js", "../manifests.js", "theme.js", "validate.js", "payloadhook.js"}


def test_the_scripts_build_no_markup_from_data_and_never_eval():
    for name in ("payloadhook.js", "validate.js", "theme.js"):
        text = read(name)
        for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                          "new Function", "localStorage.setItem", "sessionStorage"):
            assert forbidden not in text, f"{name} uses {forbidden}"


def test_content_goes_to_the_command_on_standard_input_only():
    text = read("payloadhook.js")
    spawns = re.findall(r"cockpit\.spawn\(([^;]*)\)", text)
    assert spawns == ['argv, { superuser: superuser, err: "message" }']
    assert '"--files-json", "-"' in text and "proc.input(documentText)" in text
    assert "environ:" not in text    # cockpit.spawn's option for the environment: unused


def test_patternfly_is_npms_own_tarball_pinned_by_the_lock_file():
    """PatternFly is npm's package tarball, kept in cockpit/npm/ so that the build needs no
    network: the lock pins it by its checksum (npm ci refuses a tarball that does not match,
    and this test checks the same with hashlib), and its package.json names the release."""
    import base64
    import hashlib
    import tarfile
    package = json.load(open(os.path.join(REPO, "package.json")))
    lock = json.load(open(os.path.join(REPO, "package-lock.json")))
    spec = package["dependencies"]["@patternfly/patternfly"]
    match = re.fullmatch(r"file:cockpit/npm/patternfly-patternfly-(5\.\d+\.\d+)\.tgz", spec)
    assert match    # an exact PatternFly 5 (Cockpit's pf-v5 classes), from the tree
    pinned = match.group(1)
    assert os.listdir(os.path.join(REPO, "cockpit", "npm")) == [f"patternfly-patternfly-{pinned}.tgz"]
    assert lock["lockfileVersion"] == 3    # read by Debian 12's npm 9 as by newer ones
    locked = lock["packages"]["node_modules/@patternfly/patternfly"]
    assert locked["version"] == pinned and locked["resolved"] == spec
    assert set(lock["packages"]) == {"", "node_modules/@patternfly/patternfly"}    # nothing else is installed
    tarball = os.path.join(REPO, spec[len("file:"):])
    with open(tarball, "rb") as stream:
        digest = base64.b64encode(hashlib.sha512(stream.read()).digest()).decode()
    assert locked["integrity"] == f"sha512-{digest}"
    with tarfile.open(tarball) as archive:
        meta = json.load(archive.extractfile("package/package.json"))
    assert (meta["name"], meta["version"], meta["license"]) == ("@patternfly/patternfly", pinned, "MIT")
    css = open(os.path.join(BUILT, "patternfly.css"), encoding="utf-8").read()
    assert css.startswith(f"/* PatternFly {pinned} ")


def test_the_built_stylesheet_defines_every_patternfly_class_the_page_uses():
    css = open(os.path.join(BUILT, "patternfly.css"), encoding="utf-8").read()
    used = set()
    for name in ("payloadhook.js", "index.html"):
        used |= set(re.findall(r"\b(pf-v5-c-[a-z0-9_-]*[a-z0-9]|pf-m-[a-z0-9-]*[a-z0-9]|pf-v5-screen-reader)\b",
                               read(name)))
    used |= {"fa-" + icon for icon in re.findall(r'icon\("([a-z-]+)"\)', read("payloadhook.js"))}
    used -= {"pf-m-", "pf-v5-c-table__"}    # the prefixes the scripts join to a kind or a table's part
    used |= {"pf-v5-c-table__" + part for part in ("thead", "tbody", "tr", "th", "td")}
    assert {"pf-v5-c-button", "pf-v5-c-alert", "pf-v5-c-table__td", "fa-times"} <= used
    missing = sorted(c for c in used if not re.search(r"\." + re.escape(c) + r"(?![a-z0-9_-])", css))
    assert missing == []
    for kind in ("primary", "secondary", "link", "danger", "plain", "success", "info", "warning", "green", "blue"):    # the variants the scripts make from a kind
        assert re.search(r"\.pf-m-" + kind + r"(?![a-z0-9_-])", css), kind
    # the dark theme Cockpit switches to, as PatternFly's own
    assert ":where(.pf-v5-theme-dark)" in css


def test_the_stylesheet_loads_only_cockpits_fonts_and_the_one_icon_font_shipped():
    css = open(os.path.join(BUILT, "patternfly.css"), encoding="utf-8").read()
    urls = set(re.findall(r'url\("?([^")]*)"?\)', css))
    fonts = {u for u in urls if u.startswith("../../static/fonts/")}    # cockpit-ws's /cockpit/static/fonts
    assert urls - fonts == {"fa-solid-900.woff2"}
    assert {"../../static/fonts/RedHatText-Regular.woff2", "../../static/fonts/RedHatDisplay-Medium.woff2"} <= fonts
    assert all(re.fullmatch(r"\.\./\.\./static/fonts/RedHat(Display|Text|Mono)-[A-Za-z]+\.woff2", u) for u in fonts)


def test_our_own_stylesheet_is_a_few_lines_in_patternflys_variables():
    own = read("payloadhook.css")
    rules = [line for line in own.splitlines() if line.strip() and not line.lstrip().startswith(("/*", "*"))]
    assert len(rules) < 45
    assert not re.search(r"#[0-9a-fA-F]{3,8}\b|rgba?\(", own)    # colours only through PatternFly's variables
    assert not re.search(r"^\.pf-v5-c-[a-z-]+\s*\{", own, re.M)    # no PatternFly component restyled
