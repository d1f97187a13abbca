"""The web console (README, "The web console") in a real browser: Debian's cockpit-ws with a local
session shows this clone's cockpit/ package, whose `payloadhook` command talks to the private
libvirtd; Debian's chromium drives it headless through chromium-driver. A TCG guest judges
what the page attached. Screenshots of each step: /var/tmp/payloadhook-tests/screenshots/."""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import MARKER, REPO
from tests.harness.domains import domain, wait_state
from tests.harness.tinyguest import parse_console

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SCREENSHOTS = "/var/tmp/payloadhook-tests/screenshots"
#: The repository's screenshots for the README, one a theme (Cockpit's light and dark), taken
#: by test_the_page_is_patternflys_own_in_each_theme when PAYLOADHOOK_README_SCREENSHOT is set.
README_SHOTS = {theme: os.path.join(REPO, "docs", f"console-{theme}.png") for theme in ("light", "dark")}


def _need_browser():
    for path in ("/usr/lib/cockpit/cockpit-ws", "/usr/bin/cockpit-bridge", "/usr/bin/chromium",
                 "/usr/bin/chromedriver"):
        if not os.path.exists(path):
            pytest.fail(f"{path} is missing: tests/run-all installs cockpit-ws, cockpit-bridge, chromium, "
                        "chromium-driver and python3-selenium")


@pytest.fixture(scope="module")
def console(libvirtd):
    """One cockpit-ws for this module (it ends its session ~15 s after the last browser
    leaves), its command pointed at the private daemon and the daemon's key directory."""
    _need_browser()
    from tests.harness.cockpit import CockpitWs
    conf = os.path.join(libvirtd.base, "console.conf")
    with open(conf, "w") as stream:
        stream.write(f"[payloadhook]\nkey_dir = {os.path.join(libvirtd.base, 'payloadhook-etc', 'keys')}\n")
    ws = CockpitWs(libvirtd.uri, conf).start()
    yield ws
    ws.stop()


@pytest.fixture(scope="module")
def browser(console):
    from tests.harness.cockpit import chromium
    driver = chromium()
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture
def shot(browser, request):
    """shot(step): a screenshot of the page now, kept as a test artefact."""
    os.makedirs(SCREENSHOTS, exist_ok=True)

    def take(step: str) -> str:
        path = os.path.join(SCREENSHOTS, f"{request.node.name}-{step}.png")
        # the whole page: the window made as tall as the document, then back
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, max(1000, height + 120))
        browser.save_screenshot(path)
        browser.set_window_size(1280, 1000)
        print(f"screenshot: {path}")
        return path
    return take


@pytest.fixture
def guest(libvirtd, workdir, guest_kernel, request):
    """A shut-off guest without payload disks that reports what its media hold."""
    name = "ph-web-" + request.node.name[5:25].replace("_", "-")
    console_log = workdir / "console.log"
    path = workdir / "guest.xml"
    path.write_text(domain(name, [], kernel=guest_kernel, console=str(console_log), devs="sr0,fd0"))
    libvirtd.virsh("define", str(path))

    def wait_report():
        start = time.monotonic()
        try:    # a TCG guest on a loaded machine: a bound far above a quiet boot's (~20 s)
            wait_state(libvirtd, name, "shut off", timeout=600)
        finally:
            log_wait("the guest powered off", time.monotonic() - start)
        return parse_console(console_log.read_text(errors="replace"))
    yield name, wait_report
    libvirtd.virsh("destroy", name, check=False)
    libvirtd.virsh("undefine", name, check=False)


def command(libvirtd, console, *args):
    result = subprocess.run([sys.executable, "-m", "payloadhook", "-c", libvirtd.uri, *args], capture_output=True,
                            text=True, env={**os.environ, "LC_ALL": "C", "PAYLOADHOOK_CONF": console.conf})
    assert result.returncode == 0, result.stderr
    return result.stdout


#: Where each wait's duration goes, when set (one JSON line each: test, what, seconds), for a
#: look at how long the page took under load (tests/console-waits summarises the file).
WAIT_LOG = os.environ.get("PAYLOADHOOK_WAIT_LOG")
#: A bound on each wait, so that a page that never gets there fails instead of hanging. The
#: tests wait on the page's states, never on time: the bound is far above any wait seen.
WAIT_BOUND = 240


def log_wait(what: str, seconds: float) -> None:
    if WAIT_LOG:
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
        with open(WAIT_LOG, "a") as log:
            log.write(json.dumps({"test": test, "what": what, "seconds": round(seconds, 3)}) + "\n")


def wait_for(browser, condition, what: str):
    start = time.monotonic()
    while True:
        found = condition()
        waited = time.monotonic() - start
        if found or waited > WAIT_BOUND:
            break
        time.sleep(0.05)
    log_wait(what, waited)
    if not found:
        raise AssertionError(f"the page did not show {what}")
    return found


def css(browser, selector):
    return browser.find_elements("css selector", selector)


def reads(browser) -> int:
    """The number of the page's last read on screen (data-ph-read; 0 before the first)."""
    return browser.execute_script("return Number(document.body.dataset.phRead || 0)")


def idle(browser, after: int = 0, what: str = "an idle page"):
    """The page shows a read numbered over ``after`` and no command is running (an edit ends
    only once the domain read after it is on screen, with the edit's alert)."""
    wait_for(browser, lambda: browser.execute_script(
        "return document.body.dataset.ready === 'true' && document.body.dataset.busy === 'false'"
        " && document.getElementById('main').getAttribute('aria-busy') === 'false'"
        " && Number(document.body.dataset.phRead || 0) > arguments[0]", after), what)


def load(browser, url):
    """``url`` in a new document (a link that changes only the fragment would leave the last
    page's state on screen until the page reads the new one)."""
    browser.get("about:blank")
    browser.get(url)
    idle(browser, what="the page loaded")


def act(browser, element):
    """Click ``element`` and wait for the page to show the read that follows what it started."""
    before = reads(browser)
    action = element.get_attribute("data-action")
    element.click()
    idle(browser, before, f"the domain read after {action}")


def open_domain(browser, console, name):
    load(browser, console.url + "#/domain?name=" + name)
    assert css(browser, "#payload-form"), f"the payload form of {name}"


#: Each alert as it appears, with what the page showed at that moment.
WATCH_ALERTS = """
window.phAlerts = [];
const seen = new WeakSet();
new MutationObserver(function () {
    const box = document.querySelector("#alerts .pf-v5-c-alert");
    if (box && !seen.has(box)) {
        seen.add(box);
        window.phAlerts.push({title: box.querySelector(".pf-v5-c-alert__title").textContent,
                              payloads: document.querySelectorAll(".ph-payload").length,
                              busy: document.body.dataset.busy});
    }
}).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
"""


def alerts_seen(browser) -> list[dict]:
    return browser.execute_script("return window.phAlerts")


def alert_text(browser, kind):
    boxes = css(browser, f"#alerts .pf-v5-c-alert.pf-m-{kind}")
    return boxes[0].text if boxes else ""


def secrets(contents: list[bytes]) -> list[str]:
    """What must not be in the page: the marker, and each content's base64 at each alignment."""
    found = [MARKER]
    for content in contents:
        for shift in range(3):
            found.append(base64.b64encode(content[shift:]).decode()[4:28])
    return [secret for secret in found if len(secret) >= 8]


#: Everything of the page a script can see: the DOM, every input's value and chosen files,
#: the window's own string properties, storage.
PAGE_STATE = """
const parts = [document.documentElement.outerHTML];
for (const input of document.querySelectorAll("input, select, textarea")) {
    parts.push(String(input.value));
    if (input.files) parts.push("files:" + input.files.length);
}
for (const key of Object.keys(window)) {
    try { const v = window[key]; if (typeof v === "string") parts.push(v); } catch (e) {}
}
parts.push(JSON.stringify(window.localStorage), JSON.stringify(window.sessionStorage));
return parts.join("\\n");
"""


def assert_no_content(browser, contents):
    state = browser.execute_script(PAGE_STATE)
    source = browser.page_source
    for secret in secrets(contents):
        assert secret not in state and secret not in source, f"the page holds {secret!r}"
    assert "files:1" not in state and "files:2" not in state    # no file input holds a chosen file


def browser_errors(browser):
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"
            or "Content Security Policy" in entry["message"] or "Content-Security-Policy" in entry["message"]]


@pytest.fixture
def keyed(libvirtd, console):
    """A current sealing key in the private daemon's key directory (the one its hook reads);
    the directory removed after."""
    keys = os.path.join(libvirtd.base, "payloadhook-etc", "keys")
    key_id = command(libvirtd, console, "key", "new").split()[2]
    yield key_id
    shutil.rmtree(keys, ignore_errors=True)


@pytest.fixture
def vm1(libvirtd, workdir):
    """A domain named as the README's examples name theirs (its picture shows it)."""
    (workdir / "vm1.xml").write_text(domain("vm1", []))
    libvirtd.virsh("define", str(workdir / "vm1.xml"))
    yield "vm1"
    libvirtd.virsh("undefine", "vm1", check=False)


def drop_one_file(browser):
    """A file one.txt ("one") dropped on the page's drop zone, and listed."""
    browser.execute_script("""
        const transfer = new DataTransfer();
        transfer.items.add(new File(["one"], "one.txt"));
        document.getElementById("drop-zone").dispatchEvent(
            new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
    """)
    wait_for(browser, lambda: css(browser, "#files input.ph-name-input"), "the dropped file")


def floppy_on_its_way(browser, workdir):
    """The form filled with a floppy of two files and a label, not sent: what the pictures show."""
    (workdir / "Autounattend.xml").write_bytes(b"<unattend/>\n")
    (workdir / "key.txt").write_bytes(b"ABCDE\n")
    css(browser, "select[name=type]")[0].send_keys("Floppy")
    css(browser, "input[data-input=files]")[0].send_keys(f"{workdir / 'Autounattend.xml'}\n{workdir / 'key.txt'}")
    wait_for(browser, lambda: len(css(browser, "#files input.ph-name-input")) == 2, "two files in the list")
    css(browser, "input[name=label]")[0].send_keys("ANSWERS")


def test_the_list_shows_each_domain_with_its_payloads_and_loads_without_csp_errors(libvirtd, console, browser,
                                                                                     vm1, keyed, shot, workdir):
    name = vm1
    seed = workdir / "user-data"
    seed.write_bytes(b"#cloud-config\nhostname: vm1\n")
    command(libvirtd, console, "attach", name, "--cloud-init", f"user-data={seed}")    # sealed: the host has a key
    load(browser, console.url)
    row = wait_for(browser, lambda: css(browser, f"#domains tr[data-domain='{name}']"), f"the row of {name}")[0]
    assert "Shut off" in row.text
    assert "CD-ROM · hdc · cidata · 2 files · sealed" in row.text
    shot("list")
    # filterable
    search = css(browser, "input[type=search]")[0]
    search.send_keys("no-such-domain")
    wait_for(browser, lambda: not css(browser, f"#domains tr[data-domain='{name}']"), "the row filtered out")
    assert "No domain matches the filter." in css(browser, "#domains")[0].text
    search.clear()
    search.send_keys("VM")    # case does not matter
    row = wait_for(browser, lambda: css(browser, f"#domains tr[data-domain='{name}']"), "the row back")[0]
    # the page came through Cockpit's Content-Security-Policy unharmed
    import urllib.request
    with urllib.request.urlopen(console.url, timeout=30) as response:
        assert response.headers.get("Content-Security-Policy")
    assert browser_errors(browser) == []
    # keyboard: the domain's name is a real button that opens its payloads
    before = reads(browser)
    row.find_element("css selector", "th button").send_keys("\n")
    idle(browser, before)
    assert css(browser, "#payload-form")
    assert f"Sealed (key {keyed})" in css(browser, ".ph-payload[data-type=cdrom]")[0].text
    floppy_on_its_way(browser, workdir)    # for the picture
    shot("domain")
    assert browser_errors(browser) == []
    # the check above sees what Cockpit's policy refuses: an inline script is refused and logged
    browser.execute_script("const s = document.createElement('script');"
                           "s.textContent = 'window.inlineRan = true'; document.body.appendChild(s)")
    assert not browser.execute_script("return window.inlineRan === true")
    assert any("Content Security Policy" in entry["message"] for entry in browser_errors(browser))


@pytest.mark.guest
def test_files_uploaded_through_the_page_reach_the_guest_and_leave_nothing_in_the_page(
        libvirtd, console, browser, guest, shot, workdir):
    name, wait_report = guest
    files = {"user-data": b"#cloud-config\n" + MARKER.encode() + b"\n", "readme.txt": b"hello from the browser\n"}
    for file_name, content in files.items():
        (workdir / file_name).write_bytes(content)
    open_domain(browser, console, name)
    shot("empty")
    picker = css(browser, "input[data-input=files]")[0]
    picker.send_keys("\n".join(str(workdir / n) for n in files))
    wait_for(browser, lambda: len(css(browser, "#files input.ph-name-input")) == 2, "two files in the list")
    # each file's path on the medium, renamed in place
    rename = [i for i in css(browser, "#files input.ph-name-input") if i.get_attribute("value") == "readme.txt"][0]
    rename.clear()
    rename.send_keys("docs/README.TXT")
    label = css(browser, "input[name=label]")[0]
    label.send_keys("WEBSEED")
    shot("files-added")
    browser.execute_script(WATCH_ALERTS)
    act(browser, css(browser, "button[data-action=attach]")[0])
    assert "Payload enabled" in alert_text(browser, "success")
    assert css(browser, ".ph-payload[data-type=cdrom]")
    shot("enabled")
    page = css(browser, "#main")[0].text
    for file_name, content in (("user-data", files["user-data"]), ("docs/README.TXT", files["readme.txt"])):
        assert file_name in page
        assert hashlib.sha256(content).hexdigest() in page    # unsealed (no key): names, sizes, SHA-256
    assert_no_content(browser, list(files.values()))
    assert css(browser, "#files input.ph-name-input") == []    # the list of files to send is emptied
    shown = json.loads(command(libvirtd, console, "show", name, "--json"))
    assert [(p["type"], p["label"], sorted(f["name"] for f in p["files"])) for p in shown["payloads"]] == \
        [("cdrom", "WEBSEED", ["docs/README.TXT", "user-data"])]

    libvirtd.virsh("start", name)
    report = wait_report()
    assert report["labels"]["sr0"] == "WEBSEED"
    assert report["files"][("sr0", "rock")] == {
        "user-data": hashlib.sha256(files["user-data"]).hexdigest(),
        "docs/README.TXT": hashlib.sha256(files["readme.txt"]).hexdigest()}

    # disable it
    act(browser, css(browser, "button[data-action=detach]")[0])
    shot("disabled")
    assert "Payload disabled" in alert_text(browser, "success")
    assert not css(browser, ".ph-payload")
    # each alert appeared with the domain as read after its edit, the page no longer busy
    assert alerts_seen(browser) == [{"title": "Payload enabled", "payloads": 1, "busy": "false"},
                                    {"title": "Payload disabled", "payloads": 0, "busy": "false"}]
    assert json.loads(command(libvirtd, console, "show", name, "--json"))["payloads"] == []
    assert browser_errors(browser) == []


@pytest.mark.guest
def test_run_once_with_a_floppy_from_a_folder(libvirtd, console, browser, guest, shot, workdir):
    name, wait_report = guest
    folder = workdir / "answers"
    (folder / "sub").mkdir(parents=True)
    (folder / "unattend.xml").write_bytes(b"<unattend>" + MARKER.encode() + b"</unattend>\n")
    (folder / "sub" / "key.txt").write_bytes(b"ABCDE-12345\n")
    open_domain(browser, console, name)
    css(browser, "select[name=type]")[0].send_keys("Floppy")
    css(browser, "input[data-input=folder]")[0].send_keys(str(folder))
    wait_for(browser, lambda: len(css(browser, "#files input.ph-name-input")) == 2, "the folder's two files")
    names = sorted(i.get_attribute("value") for i in css(browser, "#files input.ph-name-input"))
    assert names == ["sub/key.txt", "unattend.xml"]    # paths below the folder, as the command's DIR input
    shot("folder-added")
    act(browser, css(browser, "button[data-action=run-once]")[0])
    assert f"{name} started once" in alert_text(browser, "success")
    report = wait_report()
    assert report["files"][("fd0", "vfat")] == {
        "unattend.xml": hashlib.sha256((folder / "unattend.xml").read_bytes()).hexdigest(),
        "sub/key.txt": hashlib.sha256(b"ABCDE-12345\n").hexdigest()}
    assert json.loads(command(libvirtd, console, "show", name, "--json"))["payloads"] == []   # definition unchanged
    assert_no_content(browser, [(folder / "unattend.xml").read_bytes()])


@pytest.mark.guest
def test_a_cloud_init_preset_sealed_by_default_reaches_the_guest(libvirtd, console, browser, guest, keyed, shot,
                                                                 workdir):
    name, wait_report = guest
    user_data = b"#cloud-config\n# " + MARKER.encode() + b"\nhostname: web\n"
    (workdir / "user-data").write_bytes(user_data)
    open_domain(browser, console, name)
    seal = css(browser, "input[name=seal]")[0]
    assert seal.is_selected() and seal.is_enabled()    # the host has a key: sealed unless unticked
    css(browser, "input[data-kind=cloud-init]")[0].click()
    wait_for(browser, lambda: css(browser, "input[data-slot=user-data]"), "the cloud-init form")
    attach = css(browser, "button[data-action=attach]")[0]
    assert not attach.is_enabled()    # user-data is needed
    css(browser, "input[data-slot=user-data]")[0].send_keys(str(workdir / "user-data"))
    wait_for(browser, lambda: attach.is_enabled(), "sending allowed")
    shot("cloud-init")
    act(browser, attach)
    assert "Payload enabled" in alert_text(browser, "success")
    shot("sealed")
    payload = css(browser, ".ph-payload[data-type=cdrom]")[0].text
    assert "label cidata" in payload and "sealed" in payload and f"Sealed (key {keyed})" in payload
    assert hashlib.sha256(user_data).hexdigest() not in browser.page_source    # of a sealed file, no hash
    assert_no_content(browser, [user_data])
    (shown,) = json.loads(command(libvirtd, console, "show", name, "--json"))["payloads"]
    assert shown["label"] == "cidata" and {f["name"] for f in shown["files"]} == {"user-data", "meta-data"}
    assert all(f["sealed"] and f["key"] == keyed for f in shown["files"])

    libvirtd.virsh("start", name)
    report = wait_report()
    assert report["labels"]["sr0"] == "cidata"
    assert report["files"][("sr0", "rock")]["user-data"] == hashlib.sha256(user_data).hexdigest()
    assert "meta-data" in report["files"][("sr0", "rock")]


def test_a_config_drive_and_a_windows_answer_file_from_their_forms(libvirtd, console, browser, guest, shot,
                                                                    workdir):
    name, _ = guest
    (workdir / "user-data").write_bytes(b"#cloud-config\nhostname: web\n")
    (workdir / "network-data").write_bytes(b'{"links": [], "networks": [], "services": []}\n')
    (workdir / "unattend.xml").write_bytes(b'<?xml version="1.0"?>\n'
                                           b'<unattend xmlns="urn:schemas-microsoft-com:unattend"/>\n')
    open_domain(browser, console, name)
    for kind, slots in (("config-drive", ("user-data", "network-data")), ("sysprep", ("answer-file",))):
        css(browser, f"input[data-kind={kind}]")[0].click()
        for slot in slots:
            source = {"answer-file": "unattend.xml"}.get(slot, slot)
            wait_for(browser, lambda: css(browser, f"input[data-slot={slot}]"), f"the {slot} field")[0] \
                .send_keys(str(workdir / source))
            wait_for(browser, lambda: source in css(browser, f"[data-slot-status={slot}]")[0].text, f"{slot} chosen")
        shot(kind)
        attach = wait_for(browser, lambda: [b for b in css(browser, "button[data-action=attach]") if b.is_enabled()],
                          "sending allowed")[0]
        act(browser, attach)
        assert "Payload enabled" in alert_text(browser, "success"), kind
    shot("both")
    shown = {p["label"]: p for p in json.loads(command(libvirtd, console, "show", name, "--json"))["payloads"]}
    assert shown["config-2"]["type"] == "cdrom"
    assert {"openstack/latest/meta_data.json", "openstack/latest/user_data", "openstack/latest/network_data.json"} \
        <= {f["name"] for f in shown["config-2"]["files"]}
    (answers,) = [p for p in shown.values() if p["type"] == "floppy"]    # the pc machine has a floppy controller
    assert {f["name"] for f in answers["files"]} == {"Autounattend.xml", "Unattend.xml"}
    assert css(browser, ".ph-payload[data-type=floppy]") and css(browser, ".ph-payload[data-type=cdrom]")


def test_a_refused_input_shows_the_commands_message(libvirtd, console, browser, guest, shot, workdir):
    name, _ = guest
    content = b"a " + MARKER.encode() + b"\n"
    (workdir / "a.txt").write_bytes(content)
    open_domain(browser, console, name)
    css(browser, "input[data-input=files]")[0].send_keys(str(workdir / "a.txt"))
    field = wait_for(browser, lambda: css(browser, "#files input.ph-name-input"), "the file in the list")[0]
    attach = css(browser, "button[data-action=attach]")[0]
    # name rules as typed, in the command's words; sending is held back meanwhile
    for typed, said in (("../a.txt", "file name '../a.txt' has a '..' component"),
                        ("/a.txt", "file name '/a.txt' is absolute; names are relative paths"),
                        ("", "file name is empty")):
        field.clear()
        field.send_keys(typed or "x")
        if not typed:
            field.send_keys("\b")
        wait_for(browser, lambda: said in css(browser, "#problems")[0].text, repr(said))
        assert field.get_attribute("aria-invalid") == "true"
        assert not attach.is_enabled()
    shot("name-refused")
    field.send_keys("a.txt")
    wait_for(browser, lambda: attach.is_enabled(), "sending allowed again")
    assert css(browser, "#problems")[0].text == ""
    # two files under one name; a floppy's capacity
    (workdir / "big").mkdir()
    (workdir / "big" / "a.txt").write_bytes(b"\0" * 1_500_000)
    css(browser, "input[data-input=files]")[0].send_keys(str(workdir / "big" / "a.txt"))
    wait_for(browser, lambda: "file name 'a.txt' duplicates 'a.txt'" in css(browser, "#problems")[0].text,
             "the duplicate")
    css(browser, "select[name=type]")[0].send_keys("Floppy")
    wait_for(browser, lambda: "over the 1457664 a 1.44 MB floppy holds; use a cdrom payload"
             in css(browser, "#problems")[0].text, "the floppy's capacity")
    assert not attach.is_enabled()
    shot("capacity")
    css(browser, "#files button[aria-label='Remove a.txt']")[-1].click()
    css(browser, "select[name=type]")[0].send_keys("CD-ROM")
    wait_for(browser, lambda: attach.is_enabled(), "sending allowed again")
    # the command's own refusal: one line from its standard error
    css(browser, "input[name=target]")[0].send_keys("not-a-disk")
    act(browser, attach)
    text = alert_text(browser, "danger")
    assert "Payload refused" in text
    assert "payloadhook: " in text and "not-a-disk" in text
    shot("command-refused")
    assert json.loads(command(libvirtd, console, "show", name, "--json"))["payloads"] == []
    assert_no_content(browser, [content])
    # a preset's file as its reader would read it, refused by the command (status 1)
    assert not css(browser, "input[name=seal]")[0].is_enabled()    # no key on this host
    (workdir / "user-data").write_bytes(b"hostname: " + MARKER.encode() + b"\n")
    css(browser, "input[data-kind=cloud-init]")[0].click()
    css(browser, "input[data-slot=user-data]")[0].send_keys(str(workdir / "user-data"))
    attach = wait_for(browser, lambda: [b for b in css(browser, "button[data-action=attach]") if b.is_enabled()],
                      "sending allowed")[0]
    act(browser, attach)
    text = alert_text(browser, "danger")
    assert "payloadhook: " in text and "user-data" in text and MARKER not in text
    shot("preset-refused")
    assert json.loads(command(libvirtd, console, "show", name, "--json"))["payloads"] == []
    assert_no_content(browser, [(workdir / "user-data").read_bytes()])


def test_files_dropped_on_the_page_are_listed_and_removed_by_keyboard(console, browser, guest, shot):
    name, _ = guest
    open_domain(browser, console, name)
    browser.execute_script("""
        const transfer = new DataTransfer();
        transfer.items.add(new File(["one"], "dropped-1.txt"));
        transfer.items.add(new File(["two"], "dropped-2.txt"));
        const zone = document.getElementById("drop-zone");
        zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
    """)
    wait_for(browser, lambda: len(css(browser, "#files input.ph-name-input")) == 2, "the dropped files")
    assert sorted(i.get_attribute("value") for i in css(browser, "#files input.ph-name-input")) == \
        ["dropped-1.txt", "dropped-2.txt"]
    shot("dropped")
    for _ in range(2):
        remove = css(browser, "#files button")[0]
        remove.send_keys("\n")    # a real button: Enter works, and focus goes on to what is left
    wait_for(browser, lambda: not css(browser, "#files input.ph-name-input"), "the list emptied")
    assert browser.execute_script("return document.activeElement.dataset.action") == "add-files"
    assert not css(browser, "button[data-action=attach]")[0].is_enabled()


def test_the_page_follows_cockpits_dark_theme(console, browser, guest, shot):
    name, _ = guest
    dark = "return document.documentElement.classList.contains('pf-v5-theme-dark')"
    load(browser, console.url + "#/domain?name=" + name)
    assert not browser.execute_script(dark)
    # the shell's switch, as it tells open pages
    browser.execute_script("localStorage.setItem('shell:style', 'dark');"
                           "window.dispatchEvent(new CustomEvent('cockpit-style', {detail: {style: 'dark'}}))")
    assert browser.execute_script(dark)
    browser.refresh()    # and as a page opened afterwards finds it
    idle(browser)
    assert browser.execute_script(dark)
    assert browser.execute_script("return getComputedStyle(document.body).backgroundColor") == "rgb(15, 18, 20)"
    shot("dark")
    browser.execute_script("localStorage.removeItem('shell:style')")
    assert browser_errors(browser) == []


#: What only PatternFly 5's stylesheet (patternfly.css, built from @patternfly/patternfly) gives the
#: page, in each of Cockpit's themes: its palette's colours for the page, a card, the text and a
#: primary button, and its fonts (Cockpit's Red Hat Text and Display, which cockpit-ws serves).
PATTERNFLY = {
    "light": {"body": "rgb(240, 240, 240)", "card": "rgb(255, 255, 255)", "text": "rgb(21, 21, 21)",
              "primary": "rgb(0, 102, 204)", "primary-text": "rgb(255, 255, 255)"},
    "dark": {"body": "rgb(15, 18, 20)", "card": "rgb(27, 29, 33)", "text": "rgb(224, 224, 224)",
             "primary": "rgb(0, 102, 204)", "primary-text": "rgb(255, 255, 255)"},    # PatternFly 5 dark's own
}

LOOKS = """
const probe = function (selector) { return getComputedStyle(document.querySelector(selector)) };
const root = getComputedStyle(document.documentElement);
const sheets = Array.from(document.styleSheets).map(function (s) {
    return { href: (s.href || "").split("/").pop(), rules: s.cssRules.length } });
return { body: getComputedStyle(document.body).backgroundColor, card: probe(".pf-v5-c-card").backgroundColor,
         text: getComputedStyle(document.body).color, primary: probe(".pf-v5-c-button.pf-m-primary").backgroundColor,
         "primary-text": probe(".pf-v5-c-button.pf-m-primary").color,
         font: getComputedStyle(document.body).fontFamily, heading: probe("h1").fontFamily,
         variable: root.getPropertyValue("--pf-v5-global--primary-color--100").trim(), sheets: sheets,
         fonts: Array.from(document.fonts).filter(function (f) { return f.status === "loaded" }).map(function (f) {
             return f.family.replace(/"/g, "") + " " + f.weight + " " + f.style }) };
"""


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_page_is_patternflys_own_in_each_theme(libvirtd, console, browser, vm1, keyed, shot, workdir, theme):
    """The page's look is PatternFly's stylesheet (no look-alike): the styles only it gives, in
    the theme Cockpit's shell chose, with Cockpit's fonts loaded; every control reachable by the
    keyboard, its focus shown. The README's pictures (docs/console-light.png, console-dark.png)."""
    seed = workdir / "user-data"
    seed.write_bytes(b"#cloud-config\nhostname: vm1\n")
    command(libvirtd, console, "attach", vm1, "--cloud-init", f"user-data={seed}")    # sealed: the host has a key
    browser.get("about:blank")
    browser.get(console.url)
    browser.execute_script("localStorage.setItem('shell:style', arguments[0])", theme)
    try:
        open_domain(browser, console, vm1)
        dark = browser.execute_script("return document.documentElement.classList.contains('pf-v5-theme-dark')")
        assert dark == (theme == "dark")
        floppy_on_its_way(browser, workdir)    # for the picture (and the primary button enabled)
        wait_for(browser, lambda: css(browser, "button[data-action=attach]")[0].is_enabled(), "sending allowed")
        browser.execute_script("document.activeElement.blur()")
        browser.execute_async_script("document.fonts.ready.then(arguments[0])")
        looks = browser.execute_script(LOOKS)
        assert {key: looks[key] for key in PATTERNFLY[theme]} == PATTERNFLY[theme], looks
        assert looks["variable"] == ("#1fa7f8" if dark else "#06c")    # PatternFly's own custom property
        assert looks["font"].startswith("RedHatText") and looks["heading"].startswith("RedHatDisplay")
        # Cockpit's font files, loaded from cockpit-ws (a face that failed to load is not "loaded")
        assert {"RedHatText 400 normal", "RedHatText 700 normal", "RedHatDisplay 400 normal"} <= set(looks["fonts"])
        assert [s["href"] for s in looks["sheets"]] == ["patternfly.css", "payloadhook.css"]
        assert looks["sheets"][0]["rules"] > 2000 > looks["sheets"][1]["rules"]
        # the keyboard: Tab from the top reaches every button and field of the form, each
        # showing its focus in PatternFly's way
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys
        browser.execute_script("document.getElementById('back').focus()")
        reached, unfocused = [], []
        for _ in range(60):
            focused = browser.switch_to.active_element
            what = (focused.tag_name, focused.get_attribute("aria-label") or focused.get_attribute("data-action")
                    or focused.get_attribute("name") or focused.text)
            reached.append(what)
            if what == ("button", "run-once"):    # the form's last control
                break
            ActionChains(browser).send_keys(Keys.TAB).perform()
            style = browser.execute_script(
                "const s = getComputedStyle(arguments[0]), a = getComputedStyle(arguments[0], '::after');"
                "return [s.outlineStyle, s.outlineWidth, a.borderStyle, a.borderWidth, s.borderBottomWidth]", focused)
            if len(reached) > 1 and style[0] == "none" and style[2] == "none" and focused.tag_name not in ("input", "select"):
                unfocused.append((what, style))
        for wanted in [("button", "Payloads"), ("button", "Disable the CD-ROM payload on hdc"), ("select", "type"),
                       ("input", "label"), ("input", "target"), ("button", "add-files"), ("button", "add-folder"),
                       ("input", "seal"), ("button", "attach"), ("button", "run-once")]:
            assert any(r[0] == wanted[0] and wanted[1] in (r[1] or "") for r in reached), (wanted, reached)
        assert unfocused == []
        browser.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
        path = shot(theme)
        if os.environ.get("PAYLOADHOOK_README_SCREENSHOT"):    # set to refresh the README's pictures
            shutil.copyfile(path, README_SHOTS[theme])
        assert browser_errors(browser) == []
    finally:
        browser.execute_script("localStorage.removeItem('shell:style')")


def test_a_user_without_administrative_access_is_offered_no_edit(libvirtd, console, browser, guest, shot):
    """The session as nobody. The private daemon's read-only socket wants polkit (Debian's
    auth_unix_ro), which has no system bus here, so the reads are refused too: the page says
    so in the command's words, and offers nothing that would change a domain."""
    from tests.harness.cockpit import CockpitWs
    name, _ = guest
    ws = CockpitWs(libvirtd.ro_uri, console.conf, user="nobody", group="nogroup").start()
    try:
        load(browser, ws.url)
        page = css(browser, "#main")[0].text
        assert "Read-only" in page and "Administrative access is needed" in page
        assert "Cannot list the domains" in page and "payloadhook: cannot connect" in page
        shot("list")
        load(browser, ws.url + "#/domain?name=" + name)
        assert "payloadhook: " in css(browser, "#main")[0].text
        assert not css(browser, "#payload-form") and not css(browser, "button[data-action=detach]")
        shot("domain")
        assert browser_errors(browser) == []
    finally:
        browser.get("about:blank")
        ws.stop()


def test_a_domain_named_like_another_ones_uuid_opens_as_itself(libvirtd, console, browser, workdir, shot):
    """The page names domains to the command by UUID: virsh and the command would read a name
    written like a UUID as that UUID, and show, attach or detach another domain (found by the
    second attack review)."""
    (workdir / "victim.xml").write_text(domain("ph-victim", []))
    libvirtd.virsh("define", str(workdir / "victim.xml"))
    victim_uuid = libvirtd.virsh("domuuid", "ph-victim").stdout.strip()
    twin_uuid = "7e57a11e-0000-4000-8000-000000000001"
    twin = domain(victim_uuid, []).replace(f"<name>{victim_uuid}</name>",
                                           f"<name>{victim_uuid}</name><uuid>{twin_uuid}</uuid>", 1)
    (workdir / "twin.xml").write_text(twin)
    libvirtd.virsh("define", str(workdir / "twin.xml"))
    seed = workdir / "user-data"
    seed.write_bytes(b"#cloud-config\n")
    command(libvirtd, console, "attach", "ph-victim", "--cloud-init", f"user-data={seed}", "--no-seal")
    try:
        load(browser, console.url)
        (row,) = css(browser, f"#domains tr[data-domain='{victim_uuid}']")
        before = reads(browser)
        row.find_element("css selector", "th button").send_keys("\n")
        idle(browser, before)
        assert css(browser, "#payload-form")
        shot("uuid-twin")
        assert css(browser, ".ph-payload[data-type=cdrom]") == []    # the twin has none; the victim has one
        assert f"uuid={twin_uuid}" in browser.current_url
    finally:
        libvirtd.virsh("undefine", twin_uuid, check=False)
        libvirtd.virsh("undefine", victim_uuid, check=False)


def title(browser) -> str:
    return css(browser, "#ph-title")[0].text


def assert_refused(browser, *said):
    """The page refuses the link: one message, nothing of a domain shown, no action."""
    main = css(browser, "#main")[0].text
    assert "This link is refused" in main and all(s in main for s in said), main
    assert title(browser) == "Payloads"
    assert css(browser, "#main .pf-v5-c-alert") and len(css(browser, "#main .pf-v5-c-alert")) == 1
    assert not css(browser, ".ph-payload") and not css(browser, "#payload-form")
    assert not css(browser, "#main button[data-action]") and not css(browser, ".ph-domain-head")


@pytest.fixture
def definer(libvirtd, workdir, console):
    """A domain ph-prod-db without payload, and a domain definer's own, ph-definers, with one."""
    for name in ("ph-prod-db", "ph-definers"):
        (workdir / f"{name}.xml").write_text(domain(name, []))
        libvirtd.virsh("define", str(workdir / f"{name}.xml"))
    (workdir / "user-data").write_bytes(b"#cloud-config\n")
    command(libvirtd, console, "attach", "ph-definers", "--cloud-init", f"user-data={workdir / 'user-data'}",
            "--no-seal")
    yield {name: libvirtd.virsh("domuuid", name).stdout.strip() for name in ("ph-prod-db", "ph-definers")}
    for name in ("ph-prod-db", "ph-definers"):
        libvirtd.virsh("undefine", name, check=False)


def test_a_link_whose_name_and_uuid_are_two_domains_is_refused_with_no_action(libvirtd, console, browser,
                                                                                definer, shot):
    """A link made by a domain definer (issue 21, defect 2): the name of the administrator's
    domain, the UUID of the definer's. The page shows neither and offers nothing to run."""
    theirs = definer["ph-definers"]
    load(browser, console.url + f"#/domain?name=ph-prod-db&uuid={theirs}")
    shot("mismatch")
    assert_refused(browser, "“ph-prod-db”", theirs, "“ph-definers”")
    assert browser_errors(browser) == []
    # a UUID that is no UUID is refused as well, never looked up as a name or id
    load(browser, console.url + "#/domain?name=ph-prod-db&uuid=ph-prod-db")
    assert_refused(browser, "is not a UUID")
    # the same two, each with its own UUID, open as themselves, titled as the command names them
    for name, uuid in definer.items():
        load(browser, console.url + f"#/domain?name={name}&uuid={uuid.upper()}")
        assert title(browser) == f"{name}: payloads" and css(browser, "#payload-form")
        assert bool(css(browser, ".ph-payload")) == (name == "ph-definers")


def test_a_name_only_link_opens_the_domain_of_that_exact_name(libvirtd, console, browser, workdir, shot):
    """A name-only link names a domain by its exact name: a name written like another domain's
    UUID opens the domain so named (the command would take it for that UUID), and what the page
    sends goes to that domain."""
    (workdir / "victim.xml").write_text(domain("ph-named-victim", []))
    libvirtd.virsh("define", str(workdir / "victim.xml"))
    victim_uuid = libvirtd.virsh("domuuid", "ph-named-victim").stdout.strip()
    (workdir / "twin.xml").write_text(domain(victim_uuid, []))
    libvirtd.virsh("define", str(workdir / "twin.xml"))
    twin_uuid = libvirtd.virsh("domuuid", victim_uuid).stdout.strip()
    assert twin_uuid != victim_uuid
    (workdir / "user-data").write_bytes(b"#cloud-config\n")
    command(libvirtd, console, "attach", "ph-named-victim", "--cloud-init", f"user-data={workdir / 'user-data'}",
            "--no-seal")
    try:
        load(browser, console.url + f"#/domain?name={victim_uuid}")
        shot("named-like-a-uuid")
        assert title(browser) == f"{victim_uuid}: payloads"
        assert css(browser, ".ph-payload") == []    # the twin has none; the victim has one
        # a file sent from this page goes to the twin
        drop_one_file(browser)
        act(browser, css(browser, "button[data-action=attach]")[0])
        assert "Payload enabled" in alert_text(browser, "success")
        (twins,) = json.loads(command(libvirtd, console, "show", twin_uuid, "--json"))["payloads"]
        assert [f["name"] for f in twins["files"]] == ["one.txt"]
        (victims,) = json.loads(command(libvirtd, console, "show", "ph-named-victim", "--json"))["payloads"]
        assert victims["label"] == "cidata"
        # exact: another case, or a name no domain has, is no domain
        for name in ("PH-NAMED-VICTIM", "ph-named"):
            load(browser, console.url + f"#/domain?name={name}")
            assert_refused(browser, f"No domain on this host is named “{name}”")
    finally:
        libvirtd.virsh("undefine", twin_uuid, check=False)
        libvirtd.virsh("undefine", victim_uuid, check=False)


def test_a_name_of_digits_is_a_name_never_another_domains_id(libvirtd, console, browser, workdir, shot):
    """The command takes ids too (as virsh): a domain named as a running domain's id is
    opened as itself, not as the running one."""
    (workdir / "running.xml").write_text(domain("ph-running", []))
    libvirtd.virsh("define", str(workdir / "running.xml"))
    (workdir / "user-data").write_bytes(b"#cloud-config\n")
    command(libvirtd, console, "attach", "ph-running", "--cloud-init", f"user-data={workdir / 'user-data'}",
            "--no-seal")
    libvirtd.virsh("start", "ph-running", "--paused")
    digits = libvirtd.virsh("domid", "ph-running").stdout.strip()
    assert digits.isdigit()
    (workdir / "digits.xml").write_text(domain(digits, []))
    libvirtd.virsh("define", str(workdir / "digits.xml"))
    digits_uuid = libvirtd.virsh("domuuid", digits).stdout.strip()
    try:
        load(browser, console.url + f"#/domain?name={digits}")
        shot("digits")
        assert title(browser) == f"{digits}: payloads"
        assert "Shut off" in css(browser, ".ph-domain-head")[0].text
        assert css(browser, ".ph-payload") == []    # ph-running, the domain with that id, has one
        assert css(browser, "button[data-action=run-once]")    # offered for a shut-off domain only
    finally:
        libvirtd.virsh("destroy", "ph-running", check=False)
        libvirtd.virsh("undefine", "ph-running", check=False)
        libvirtd.virsh("undefine", digits_uuid, check=False)


def test_a_name_with_invisible_characters_is_titled_with_them_written_out(libvirtd, console, browser, workdir,
                                                                           shot):
    """A domain definer's name can look like another's (a zero-width space, a bidirectional
    mark): the page writes such characters out, in its title as in its refusals."""
    import urllib.parse
    name = "ph-prod-db\u200b"
    (workdir / "lookalike.xml").write_text(domain(name, []))
    libvirtd.virsh("define", str(workdir / "lookalike.xml"))
    uuid = libvirtd.virsh("domuuid", name).stdout.strip()
    try:
        load(browser, console.url + f"#/domain?name={urllib.parse.quote(name)}&uuid={uuid}")
        assert title(browser) == "ph-prod-db\\u{200b}: payloads"
        load(browser, console.url + f"#/domain?name=ph-prod-db&uuid={uuid}")
        shot("lookalike")
        assert_refused(browser, "“ph-prod-db”", "“ph-prod-db\\u{200b}”")
    finally:
        libvirtd.virsh("undefine", uuid, check=False)


#: Names that look like ph-prod-db in a title (the third attack review's H1): a Cyrillic о, a
#: non-breaking hyphen, a trailing space; and what the page says of each.
LOOKALIKES = {
    "ph-pr\u043ed-db": "U+043E (character 6)",
    "ph-prod\u2011db": "U+2011 (character 8)",
    "ph-prod-db ": "a space at its end",
}


def test_a_name_that_looks_like_another_is_shown_with_its_uuid_and_a_warning(libvirtd, console, browser,
                                                                                workdir, shot):
    """Domains whose names look alike are told apart: the page shows each one's UUID (from
    `show --json`) beside its title and in the list, and warns of a name holding characters
    outside printable ASCII, written out as U+XXXX, or spaces at its ends."""
    import urllib.parse
    uuids = {}
    for number, name in enumerate(["ph-prod-db", *LOOKALIKES]):
        (workdir / f"look{number}.xml").write_text(domain(name, []))
        libvirtd.virsh("define", str(workdir / f"look{number}.xml"))
        uuids[name] = libvirtd.virsh("domuuid", name).stdout.strip()
    assert len(set(uuids.values())) == 4
    try:
        for name, uuid in uuids.items():
            load(browser, console.url + f"#/domain?name={urllib.parse.quote(name)}&uuid={uuid}")
            assert css(browser, "#payload-form")
            identity = css(browser, "#ph-identity")[0]
            assert identity.is_displayed() and identity.text == f"UUID {uuid}"
            warning = css(browser, "#ph-name-warning")[0]
            if name == "ph-prod-db":
                assert not warning.is_displayed() and warning.text == ""
                continue
            shot("lookalike-" + uuid[:8])
            assert warning.is_displayed(), name
            assert "This name can look like another domain's" in warning.text
            assert LOOKALIKES[name] in warning.text, warning.text
        # a link with the plain name and a look-alike's UUID is refused, saying what tells them apart
        for name in LOOKALIKES:
            load(browser, console.url + f"#/domain?name=ph-prod-db&uuid={uuids[name]}")
            assert_refused(browser, "“ph-prod-db”", uuids[name], "That name holds ", LOOKALIKES[name])
        # the list: each name with its UUID under it, the look-alikes flagged
        load(browser, console.url)
        shot("lookalike-list")
        for name, uuid in uuids.items():
            (row,) = [r for r in css(browser, "#domains tbody tr") if r.get_attribute("data-domain") == name]
            assert row.find_element("css selector", ".ph-uuid").text == uuid
            flags = row.find_elements("css selector", ".ph-name-flag")
            assert (name == "ph-prod-db") == (flags == []), name
            if flags:
                assert LOOKALIKES[name] in flags[0].text
        assert browser_errors(browser) == []
    finally:
        for uuid in uuids.values():
            libvirtd.virsh("undefine", uuid, check=False)


def test_an_edits_alert_names_its_domain_when_the_page_has_moved_on(libvirtd, console, browser, definer, shot):
    """An edit of one domain that ends while the page shows another (the administrator opened
    it meanwhile) says which domain it was about, by name and UUID, never as if it were the
    domain shown (the third attack review's L4)."""
    prod, theirs = definer["ph-prod-db"], definer["ph-definers"]
    load(browser, console.url + f"#/domain?name=ph-prod-db&uuid={prod}")
    drop_one_file(browser)
    before = reads(browser)
    browser.execute_script("""
        document.querySelector("button[data-action=attach]").click();
        window.location.hash = arguments[0];
    """, f"#/domain?name=ph-definers&uuid={theirs}")
    wait_for(browser, lambda: alert_text(browser, "success"), "the edit's alert")
    idle(browser, before, "the page after the edit")
    shot("moved-on")
    assert css(browser, "#ph-identity")[0].text == f"UUID {theirs}" and title(browser) == "ph-definers: payloads"
    said = alert_text(browser, "success")
    assert "Payload enabled: ph-prod-db" in said and prod in said and "not the domain shown" in said, said
    (enabled,) = json.loads(command(libvirtd, console, "show", prod, "--json"))["payloads"]
    assert [f["name"] for f in enabled["files"]] == ["one.txt"]
    # an edit that ends on its own domain says only what it did
    act(browser, css(browser, "button[data-action=detach]")[0])
    assert alert_text(browser, "success").startswith("Payload disabled") and "not the domain shown" \
        not in alert_text(browser, "success")
