"""The web console's files (cockpit/), without a browser: what Cockpit's Content-Security-Policy
and the contract ask of them, and that every way of installing ships all of them."""

import configparser
import json
import os
import re
from html.parser import HTMLParser

from payloadhook.install import COCKPIT_FILES
from tests.conftest import REPO

COCKPIT = os.path.join(REPO, "cockpit")


def read(name):
    with open(os.path.join(COCKPIT, name), encoding="utf-8") as stream:
        return stream.read()


def test_every_file_of_the_package_is_installed_by_install_hook_the_rpm_and_pip():
    present = sorted(os.listdir(COCKPIT))
    assert sorted(COCKPIT_FILES) == present
    with open(os.path.join(REPO, "packaging", "payloadhook.spec")) as stream:
        spec = stream.read()
    for name in present:
        assert f"cockpit/{name}" in spec and f"%{{_datadir}}/cockpit/payloadhook/{name}" in spec
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
