"""One list of installed files, payloadhook/install.py's FILES (and RPM_ONLY): install-hook
places it, and the RPM spec and setup.cfg's data_files say the same, read here as text."""

import configparser
import os
import re

from payloadhook import __version__
from payloadhook.install import _REMOVAL_ORDER, COCKPIT_BUILD, FILES, RPM_ONLY, source_file
from tests.conftest import REPO

SPEC = os.path.join(REPO, "packaging", "payloadhook.spec")
MACROS = {"%{_sysconfdir}": "/etc", "%{_datadir}": "/usr/share", "%{_tmpfilesdir}": "/usr/lib/tmpfiles.d",
          "%{_unitdir}": "/usr/lib/systemd/system", "%{_bindir}": "/usr/bin"}
#: what %install writes that is not a tree file: the scripts it makes with install.py, and the
#: seed's unit, which install-hook writes for its interpreter and the RPM ships as written for
#: its /usr/bin/payloadhook (tests/test_install.py holds the two the same)
SCRIPTS = {"payloadhook-hook": None, "payloadhook-command": None, "packaging/payloadhook-seed.service": None}


def expand(text):
    for macro, value in MACROS.items():
        text = text.replace(macro, value)
    return text


def spec_section(name):
    text = open(SPEC, encoding="utf-8").read()
    return re.search(rf"^%{name}\n(.*?)(?=^%[a-z]+\n|\Z)", text, re.S | re.M).group(1)


def test_every_file_has_a_source_in_the_tree_and_is_removed_by_uninstall():
    assert sorted(_REMOVAL_ORDER) == sorted(item.path for item in FILES)
    for item in FILES + RPM_ONLY:
        if item.source is not None:
            assert os.path.isfile(os.path.join(REPO, item.source)), item.source
    for item in FILES:
        if item.source is not None:    # found where install-hook looks for it (here: the tree)
            assert open(source_file(item.source), "rb").read() == open(os.path.join(REPO, item.source), "rb").read()


def test_the_spec_files_list_is_install_pys():
    listed, config = set(), set()
    for line in spec_section("files").splitlines():
        if not line or line.startswith(("#", "%dir", "%license", "%doc", "%{python3_sitelib}")):
            continue
        path = expand(line.replace("%config(noreplace) ", ""))
        listed.add(path)
        if line.startswith("%config"):
            config.add(path)
    assert listed == {"/" + item.path for item in FILES + RPM_ONLY}
    assert config == {"/" + item.path for item in FILES + RPM_ONLY if item.config}


def test_the_spec_installs_each_file_from_its_source_with_its_mode():
    installed = {}
    for line in spec_section("install").replace("\\\n", " ").splitlines():
        words = line.split()
        if not words or words[0] != "install" or "-m" not in words:
            continue
        mode = int(words[words.index("-m") + 1], 8)
        sources = [w for w in words[1:-1] if not w.startswith("-") and w != words[words.index("-m") + 1]]
        target = expand(words[-1].replace("%{buildroot}", ""))
        for source in sources:
            path = target + os.path.basename(source) if target.endswith("/") else target
            installed[path] = (SCRIPTS.get(source, source), mode)
    expected = {"/" + item.path: (item.source, item.mode) for item in FILES + RPM_ONLY}
    assert installed == expected


def test_setup_cfg_ships_the_shared_files_where_install_hook_finds_them():
    setup = configparser.ConfigParser()
    setup.read(os.path.join(REPO, "setup.cfg"))
    shipped = {}
    for key, value in setup["options.data_files"].items():
        for source in (s.strip() for s in value.split(",")):
            shipped[source] = key
    expected = {}
    for item in FILES:
        if item.source is None or item.source.startswith("payloadhook/data/"):
            continue    # the scripts are made at install; data/ ships inside the package
        directory = os.path.dirname(item.source)
        expected[item.source] = "share/payloadhook" + ("/cockpit" if directory == COCKPIT_BUILD else "")
    assert shipped == expected
    assert setup["options.package_data"]["payloadhook"].strip() == "data/*.conf"


def test_one_version_number():
    setup = configparser.ConfigParser()
    setup.read(os.path.join(REPO, "setup.cfg"))
    assert setup["metadata"]["version"] == "attr: payloadhook.__version__"
    assert re.search(r"^Version:\s+%\{pkg_version\}$", open(SPEC, encoding="utf-8").read(), re.M)
    assert f"## {__version__}" in open(os.path.join(REPO, "CHANGELOG.md"), encoding="utf-8").read()
