"""install-hook and uninstall-hook, into a staging root: the files, their modes, idempotence."""

import os
import shutil
import stat
import subprocess
import sys

from payloadhook.cli import main
from payloadhook.install import (
    COCKPIT_BUILD,
    COCKPIT_DIR,
    COCKPIT_FILES,
    CONF,
    HOOK,
    SCHEMA,
    SEED_UNIT,
    TMPFILES,
    XSL,
    hook_script,
)
from tests.conftest import REPO


def test_hooks_qemu_is_what_install_hook_writes():
    with open(os.path.join(REPO, "hooks", "qemu")) as stream:
        assert stream.read() == hook_script("/usr/bin/python3")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_install_is_idempotent_and_keeps_an_edited_configuration(tmp_path, capsys):
    root = str(tmp_path)
    assert main(["install-hook", "--root", root, "--python", sys.executable]) == 0
    first = capsys.readouterr().out
    assert first.count("installed") == 15   # 7 files, and the 8 of the Cockpit package
    unit = (tmp_path / SEED_UNIT).read_text()    # the seed service's unit: installed, never enabled
    assert f"ExecStart={sys.executable} -I -m payloadhook serve\n" in unit
    assert not os.path.exists(tmp_path / "etc" / "systemd")
    assert "systemctl enable --now payloadhook-seed" in first
    assert mode(tmp_path / HOOK) == 0o755 and mode(tmp_path / CONF) == 0o644
    assert open(tmp_path / HOOK).readline() == f"#!{sys.executable} -IS\n"   # site skipped: see import_path
    assert "d /run/payloadhook 0711 root root -" in (tmp_path / TMPFILES).read_text()
    assert (tmp_path / XSL).read_bytes() == open(os.path.join(REPO, "xsl", "redact.xsl"), "rb").read()
    assert (tmp_path / SCHEMA).read_bytes() == open(os.path.join(REPO, "schema", "payloads.rng"), "rb").read()
    for name in COCKPIT_FILES:    # the web console as packaging/build-cockpit built it, where Cockpit finds packages
        built = os.path.join(REPO, COCKPIT_BUILD, name)
        assert (tmp_path / COCKPIT_DIR / name).read_bytes() == open(built, "rb").read()
        assert mode(tmp_path / COCKPIT_DIR / name) == 0o644

    assert main(["install-hook", "--root", root, "--python", sys.executable]) == 0
    assert capsys.readouterr().out.count("unchanged") == 15

    (tmp_path / CONF).write_text("[payloadhook]\nimage_dir = /srv/payloads\n")
    main(["install-hook", "--root", root, "--python", sys.executable])
    assert "kept" in capsys.readouterr().out
    assert "/srv/payloads" in (tmp_path / CONF).read_text()

    assert main(["uninstall-hook", "--root", root]) == 0
    out = capsys.readouterr().out
    assert out.count("removed") == 14 and "kept" in out
    assert not os.path.exists(tmp_path / HOOK) and os.path.exists(tmp_path / CONF)
    (tmp_path / CONF).unlink()
    main(["install-hook", "--root", root])
    main(["uninstall-hook", "--root", root])
    leftovers = [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]
    assert leftovers == []


def test_installed_hook_runs_a_contract_example(tmp_path):
    main(["install-hook", "--root", str(tmp_path), "--python", sys.executable])
    conf = tmp_path / "test.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {tmp_path}/images\n")
    xml = open(os.path.join(REPO, "tests", "data", "contract-example.xml"), "rb").read()
    xml = xml.replace(b"/run/payloadhook", f"{tmp_path}/images".encode())
    env = {"LC_ALL": "C", "PAYLOADHOOK_CONF": str(conf)}
    hook = str(tmp_path / HOOK)
    result = subprocess.run([hook, "win-builder", "prepare", "begin", "-"], input=xml, capture_output=True, env=env)
    assert (result.returncode, result.stderr) == (0, b"")
    assert sorted(os.listdir(tmp_path / "images")) == [".payloadhook", "win-builder-fda.img", "win-builder-hdc.iso"]
    subprocess.run([hook, "win-builder", "release", "end", "-"], input=xml, check=True, env=env)
    assert os.listdir(tmp_path / "images") == [".payloadhook"]
    # the migrate/restore filter, which imports lxml: found without site too
    moved = xml.replace(f"{tmp_path}/images".encode(), b"/elsewhere")
    result = subprocess.run([hook, "win-builder", "restore", "begin", "-"], input=moved, capture_output=True, env=env)
    assert (result.returncode, result.stderr) == (0, b"") and f"{tmp_path}/images/".encode() in result.stdout


def test_without_site_the_hook_imports_from_the_directories_found_at_install(tmp_path):
    """-S: the script finds payloadhook, lxml, defusedxml and cryptography through its own sys.path line alone."""
    from payloadhook.install import import_path
    path = import_path(sys.executable)
    assert path is not None and len(path) >= 1
    script = hook_script(sys.executable, path)
    assert script.startswith(f"#!{sys.executable} -IS\n")
    code = script.split("\n", 1)[1].replace("from payloadhook.hook import run", "import payloadhook.hook, lxml.etree, defusedxml.ElementTree, cryptography.hazmat.primitives.ciphers.aead, payloadhook.seal.evp")
    code = code.replace("status = run(sys.argv, sys.stdin.buffer, sys.stdout.buffer, sys.stderr)",
                        "print('site' in sys.modules)\nstatus = 0")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "False\n", "")


def test_an_interpreter_missing_an_import_gets_the_hook_with_site(tmp_path, monkeypatch):
    from payloadhook import install
    monkeypatch.setattr(install, "HOOK_IMPORTS", ("payloadhook", "no_such_module_here"))
    assert install.import_path(sys.executable) is None
    assert install.import_path(str(tmp_path / "no-python")) is None
    main(["install-hook", "--root", str(tmp_path), "--python", sys.executable, "--no-reload"])
    assert open(tmp_path / HOOK).readline() == f"#!{sys.executable} -I\n"


def test_the_rpms_seed_unit_is_the_one_install_hook_writes_for_the_rpms_command():
    from payloadhook.seed.unit import command_of, unit_text
    shipped = open(os.path.join(REPO, "packaging", "payloadhook-seed.service")).read()
    assert shipped == unit_text("/usr/bin/payloadhook") and command_of(shipped) == "/usr/bin/payloadhook"
    assert "[Install]\nWantedBy=multi-user.target" in shipped     # enabled by the administrator only


def test_uninstall_names_the_sealing_keys_it_leaves_and_how_to_remove_them(tmp_path, capsys):
    """The keys open every sealed blob in definitions, backups and exports: uninstall leaves
    them, on purpose, and says so, with the command that removes them and what that means."""
    from payloadhook.seal.keys import KeyStore
    root = str(tmp_path)
    main(["install-hook", "--root", root, "--python", sys.executable, "--no-reload"])
    keys = KeyStore(str(tmp_path / "etc" / "payloadhook" / "keys"))
    keys.new()
    keys.new()
    capsys.readouterr()
    assert main(["uninstall-hook", "--root", root, "--no-reload"]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "keys" in line]
    assert line.startswith(f"kept      {keys.key_dir} (2 sealing keys")
    assert f"'rm -r {keys.key_dir}'" in line and "backups and exports" in line
    assert len(os.listdir(keys.key_dir)) == 3    # both keys and current, untouched

    for name in os.listdir(keys.key_dir):
        os.unlink(os.path.join(keys.key_dir, name))
    main(["install-hook", "--root", root, "--python", sys.executable, "--no-reload"])
    capsys.readouterr()
    main(["uninstall-hook", "--root", root, "--no-reload"])
    assert "keys" not in capsys.readouterr().out    # an empty key directory: nothing to say


def test_install_hook_from_a_tree_whose_console_is_not_built_refuses_and_writes_nothing(tmp_path):
    tree = tmp_path / "tree"
    for part in ("payloadhook", "xsl", "schema"):    # the sources install-hook reads, but build/cockpit/
        shutil.copytree(os.path.join(REPO, part), tree / part, ignore=shutil.ignore_patterns("__pycache__"))
    root = tmp_path / "root"
    result = subprocess.run([sys.executable, "-m", "payloadhook", "install-hook", "--root", str(root),
                             "--python", sys.executable, "--no-reload"],
                            cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr == ("payloadhook: the web console's manifest.json is not built: run packaging/build-cockpit "
                             "in the source tree (it needs node and npm)\n")
    assert not root.exists() or [f for _, _, files in os.walk(root) for f in files] == []
