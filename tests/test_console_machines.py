"""The page's link into Debian's cockpit-machines (README, "The web console"), followed in a real
browser: Cockpit's shell (cockpit-system) shows the payloadhook page for a domain of a private
libvirtd; its "Open in Virtual machines" jumps to cockpit-machines' page for the same domain,
which reads it through libvirt-dbus on a private system bus (tests/harness/systembus.py) from
the same daemon, and shows it under its own name. polkitd on that bus answers the daemon for
its read-only socket, so a user without administrative access reads the payloads, read-only,
and cockpit-machines shows that user nothing. Screenshots: SCREENSHOTS, and
docs/console-machines.png (the README's) when PAYLOADHOOK_README_SCREENSHOT is set."""

import base64
import os
from urllib.parse import quote

import pytest

from tests.conftest import REPO
from tests.harness.domains import defined
from tests.harness.libvirtd import Libvirtd
from tests.test_console import SCREENSHOTS, _need_browser, css, idle, wait_for
from tests.test_lifecycle import CD

pytestmark = [pytest.mark.integration, pytest.mark.browser]

README_SHOT = os.path.join(REPO, "docs", "console-machines.png")
MACHINES = "/usr/share/cockpit/machines/manifest.json"
#: a name the link must carry whole: a space, "=" and "+", which a query string would split or change
NAME = "ph machines=vm+1"


def _need_machines():
    for path in (MACHINES, "/usr/share/cockpit/shell/manifest.json", "/usr/sbin/libvirt-dbus", "/usr/bin/dbus-daemon"):
        if not os.path.exists(path):
            pytest.fail(f"{path} is missing: tests/run-all installs cockpit-machines, cockpit-system, libvirt-dbus "
                        "and dbus-daemon")


@pytest.fixture(scope="module")
def system_bus():
    _need_machines()
    from tests.harness.systembus import SystemBus
    bus = SystemBus(polkit=True).start()
    yield bus
    bus.stop()


@pytest.fixture(scope="module")
def host(system_bus):
    """A private libvirtd of this module's own, started on the private bus (where it asks
    polkitd), with libvirt-dbus serving it there."""
    daemon = Libvirtd(system_bus=system_bus.socket).start()
    try:
        system_bus.add_libvirt_dbus(daemon)
        conf = os.path.join(daemon.base, "machines-console.conf")
        with open(conf, "w") as stream:
            stream.write("[payloadhook]\n")
        daemon.console_conf = conf
    except BaseException:
        daemon.stop()
        raise
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def console(host, system_bus):
    _need_browser()
    from tests.harness.cockpit import CockpitWs
    ws = CockpitWs(host.uri, host.console_conf, system_bus=system_bus.address).start()
    yield ws
    ws.stop()


@pytest.fixture(scope="module")
def browser(console):
    from tests.harness.cockpit import chromium
    driver = chromium()
    driver.implicitly_wait(0)
    driver.set_window_size(1200, 800)
    yield driver
    driver.quit()


def enter_frame(browser, name: str, what: str) -> None:
    """Into the shell's iframe of the page ``name`` (cockpit1:localhost/<page>)."""
    def found():
        browser.switch_to.default_content()
        return [f for f in css(browser, "iframe") if f.get_attribute("name") == name]
    browser.switch_to.frame(wait_for(browser, found, what)[0])


def side_by_side(browser, left: bytes, right: bytes) -> bytes:
    """Two PNG screenshots joined left to right, drawn on a canvas in the browser."""
    browser.get("about:blank")
    data = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const load = src => new Promise(resolve => { const i = new Image(); i.onload = () => resolve(i); i.src = src; });
        Promise.all([load(arguments[0]), load(arguments[1])]).then(([a, b]) => {
            const c = document.createElement("canvas");
            c.width = a.width + b.width; c.height = Math.max(a.height, b.height);
            const g = c.getContext("2d"); g.drawImage(a, 0, 0); g.drawImage(b, a.width, 0);
            done(c.toDataURL("image/png"));
        });""", "data:image/png;base64," + base64.b64encode(left).decode(),
        "data:image/png;base64," + base64.b64encode(right).decode())
    return base64.b64decode(data.split(",", 1)[1])


def test_the_link_opens_the_same_domain_in_cockpit_machines(host, system_bus, console, browser, workdir):
    # cockpit-machines' library on the bus sees the private daemon's domains, and only root and
    # the group libvirt may call it (Debian's org.libvirt.conf): a user outside it is refused
    refused = system_bus.call("--dest=org.libvirt", "/org/libvirt/QEMU", "org.libvirt.Connect.ListDomains",
                              "uint32:0", user="nobody")
    assert refused.returncode != 0 and "AccessDenied" in refused.stderr, refused.stderr
    with defined(host, workdir, NAME, [], [CD]):
        uuid = host.virsh("domuuid", NAME).stdout.strip()
        listed = system_bus.call("--dest=org.libvirt", "/org/libvirt/QEMU", "org.libvirt.Connect.ListDomains",
                                 "uint32:0")
        assert uuid.replace("-", "_") in listed.stdout, listed.stdout + listed.stderr

        # the payloadhook page, inside Cockpit's shell, for that domain
        browser.get(f"http://127.0.0.1:{console.port}/payloadhook#/domain?name={quote(NAME, safe='')}")
        enter_frame(browser, "cockpit1:localhost/payloadhook", "the payloadhook page in the shell")
        idle(browser, what="the payloadhook page loaded")
        assert NAME in css(browser, "#ph-title")[0].text
        assert css(browser, ".ph-payload"), "the domain's payload"
        browser.switch_to.default_content()
        payloadhook_shot = browser.get_screenshot_as_png()
        enter_frame(browser, "cockpit1:localhost/payloadhook", "the payloadhook page in the shell")
        link = wait_for(browser, lambda: browser.find_elements(
            "xpath", "//button[normalize-space()='Open in Virtual machines']"), "the link into Virtual machines")
        link[0].click()

        # the shell moves to cockpit-machines' page of the domain, in the form cockpit-machines
        # itself makes (cockpit.location.go(["vm"], {name, connection}))
        browser.switch_to.default_content()
        wait_for(browser, lambda: "/machines#" in browser.current_url, "the shell at Virtual machines")
        assert browser.current_url.endswith(f"/machines#/vm?name={quote(NAME, safe='')}&connection=system")
        enter_frame(browser, "cockpit1:localhost/machines", "cockpit-machines in the shell")

        def shown():
            # on a host without KVM (these machines: TCG only) cockpit-machines first says so,
            # with an Ignore button an administrator clicks; then the domain's page
            ignore = css(browser, "#ignore-hw-virtualization-disabled-btn")
            if ignore:
                ignore[0].click()
                return None
            names = css(browser, ".vm-top-panel h2.vm-name")
            return names if names and names[0].text else None
        names = wait_for(browser, shown, "cockpit-machines' page of the domain")
        assert [n.text for n in names] == [NAME]
        # its overview's connection: the system one, which the link named
        connection = css(browser, '.vm-top-panel ~ * [id^="vm-"][id$="-connection"], [id^="vm-"][id$="-connection"]')
        assert connection and connection[0].text == "System"
        browser.switch_to.default_content()
        machines_shot = browser.get_screenshot_as_png()

    os.makedirs(SCREENSHOTS, exist_ok=True)
    both = side_by_side(browser, payloadhook_shot, machines_shot)
    path = os.path.join(SCREENSHOTS, "console-machines.png")
    with open(path, "wb") as stream:
        stream.write(both)
    print(f"screenshot: {path}")
    if os.environ.get("PAYLOADHOOK_README_SCREENSHOT"):    # set to refresh docs/console-machines.png
        with open(README_SHOT, "wb") as stream:
            stream.write(both)


def test_a_user_without_administrative_access_reads_the_payloads_and_machines_shows_nothing(
        host, system_bus, console, browser, workdir):
    """The session as nobody (no administrative access, not in the group libvirt). The page's
    reads go to the daemon's read-only socket, which polkitd on the private bus allows anyone
    (Debian's org.libvirt.unix.monitor): the domain and its payloads are listed, read-only,
    with nothing that would change them. cockpit-machines gets nothing from libvirt-dbus,
    which the bus's policy closes to such a user."""
    from tests.harness.cockpit import CockpitWs
    ws = CockpitWs(host.ro_uri, host.console_conf, user="nobody", group="nogroup",
                   system_bus=system_bus.address).start()
    try:
        with defined(host, workdir, NAME, [], [CD]):
            browser.get(f"http://127.0.0.1:{ws.port}/payloadhook#/domain?name={quote(NAME, safe='')}")
            enter_frame(browser, "cockpit1:localhost/payloadhook", "the payloadhook page in the shell")
            idle(browser, what="the payloadhook page loaded")
            main = css(browser, "#main")[0].text
            assert NAME in css(browser, "#ph-title")[0].text
            assert "Read-only" in main and "Administrative access is needed" in main, main
            assert all(f.name in main for f in CD.files), main
            assert css(browser, ".ph-payload")
            assert not css(browser, "#payload-form") and not css(browser, "button[data-action=detach]")
            assert not css(browser, "button[data-action=attach]") and not css(browser, "button[data-action=run-once]")
            browser.switch_to.default_content()
            browser.save_screenshot(os.path.join(SCREENSHOTS, "console-machines-read-only.png"))

            enter_frame(browser, "cockpit1:localhost/payloadhook", "the payloadhook page in the shell")
            link = wait_for(browser, lambda: browser.find_elements(
                "xpath", "//button[normalize-space()='Open in Virtual machines']"), "the link into Virtual machines")
            link[0].click()
            browser.switch_to.default_content()
            enter_frame(browser, "cockpit1:localhost/machines", "cockpit-machines in the shell")

            def said():
                ignore = css(browser, "#ignore-hw-virtualization-disabled-btn")
                if ignore:
                    ignore[0].click()
                    return None
                text = css(browser, "body")[0].text
                return text if "does not exist on system connection" in text else None
            text = wait_for(browser, said, "cockpit-machines' answer for a domain it cannot see")
            assert f"VM {NAME} does not exist on system connection" in text
            assert not css(browser, "h2.vm-name")
    finally:
        browser.get("about:blank")
        ws.stop()
