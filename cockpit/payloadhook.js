/* payloadhook's Cockpit page (README, "The web console"): the host's domains with their payloads,
 * and a domain's payloads edited as `payloadhook attach`, `detach` and `run-once` do, through
 * that command. Reads run with superuser "try" (a user without administrative access sees
 * everything read-only); edits with superuser "require".
 *
 * Content never shows and never stays: files picked in the browser are kept as File handles
 * (the browser's reference to the user's file, not its bytes) until the administrator
 * sends them; they are read, base64-encoded into one JSON document written to the command's
 * standard input (never a command line or the environment), and the document, the strings
 * and the handles are dropped as soon as it is written. The page shows names, sizes, SHA-256
 * of unsealed files and sealed state only, as `payloadhook show --json` gives them.
 *
 * Every DOM node is built with textContent: no markup is made from data. The markup is
 * PatternFly 5's (its CSS, patternfly.css, built by cockpit/build.js from @patternfly/patternfly):
 * its component classes (pf-v5-c-*) on the elements its documentation gives each component. */
(function () {
    "use strict";

    const rules = window.PayloadhookRules;
    const TYPES = { cdrom: "CD-ROM", floppy: "Floppy" };
    /* The presets (README, "Presets"): each slot is one file, named in the --files-json
     * document by the slot's name and given to the flag as json:NAME. */
    const PRESETS = {
        files: { title: "Files", help: "Any files, each at a path you choose on a CD-ROM or floppy." },
        "cloud-init": {
            title: "cloud-init",
            flag: "--cloud-init",
            help: "A cloud-init NoCloud seed: a CD-ROM labelled cidata. Without meta-data, one is made " +
                "(instance-id: the domain's UUID, local-hostname: its name). Each file is checked as cloud-init " +
                "reads it.",
            slots: [["user-data", true], ["meta-data", false], ["network-config", false], ["vendor-data", false]],
        },
        "config-drive": {
            title: "Config drive",
            flag: "--config-drive",
            help: "An OpenStack config drive: a CD-ROM labelled config-2, with openstack/latest/meta_data.json " +
                "made from the domain's name and UUID (uuid, name, hostname).",
            slots: [["user-data", true], ["network-data", false], ["vendor-data", false]],
        },
        sysprep: {
            title: "Windows answer file",
            flag: "--sysprep",
            help: "A Windows answer file, as Autounattend.xml and Unattend.xml (the names Windows Setup and " +
                "sysprep search for): on a floppy where the machine has a floppy controller (i440fx), else on a " +
                "CD-ROM (q35).",
            slots: [["answer-file", true]],
        },
    };

    const state = {
        admin: false, /* cockpit.permission's answer: edits shown only when true */
        domains: null,
        listError: null,
        filter: "",
        link: null, /* the domain the URL asks for ({name, uuid}), or null for the list: what to look
                       for and check, never shown */
        detail: null, /* `show --json` of the domain acted on, once it matches the link */
        detailError: null, /* {title, text}: the command's refusal, or the page's refusal of the link */
        currentKey: null, /* the host's current sealing key id, if any */
        busy: false, /* an edit runs, or its outcome waits for the domain read again */
        outcome: null, /* an edit's alert, shown with the read that follows it */
        issued: 0, /* the reads started (a generation counter) */
        applied: 0, /* the read whose answer is on screen (data-ph-read) */
        form: null,
    };

    const main = document.getElementById("main");
    const alerts = document.getElementById("alerts");

    /* -- building the DOM ------------------------------------------------------------ */

    /* An element: attrs are attributes, except "text" (textContent), "class", "on" (event
     * handlers by event name) and properties listed in PROPS; children are nodes or strings.
     * Every table of the page is PatternFly's: its parts get the table's element classes. */
    const PROPS = ["checked", "disabled", "value", "multiple", "hidden", "webkitdirectory"];
    const TABLE_PARTS = ["thead", "tbody", "tr", "th", "td"];
    function h(tag, attrs) {
        const node = document.createElement(tag);
        if (TABLE_PARTS.indexOf(tag) >= 0)
            node.className = "pf-v5-c-table__" + tag;
        const given = attrs || {};
        for (const key of Object.keys(given)) {
            const value = given[key];
            if (value === undefined || value === null || value === false && PROPS.indexOf(key) < 0)
                continue;
            if (key === "text")
                node.textContent = value;
            else if (key === "class")
                node.className = (node.className ? node.className + " " : "") + value;
            else if (key === "on")
                Object.keys(value).forEach(function (event) { node.addEventListener(event, value[event]) });
            else if (PROPS.indexOf(key) >= 0)
                node[key] = value;
            else
                node.setAttribute(key, value === true ? "" : value);
        }
        for (let i = 2; i < arguments.length; i++)
            append(node, arguments[i]);
        return node;
    }

    function append(node, child) {
        if (child === null || child === undefined || child === false)
            return;
        if (Array.isArray(child))
            child.forEach(function (c) { append(node, c) });
        else
            node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }

    function button(text, kind, onClick, attrs, content) {
        return h("button", Object.assign({ type: "button", class: "pf-v5-c-button pf-m-" + kind, text: text,
                                          on: { click: onClick } }, attrs || {}), content);
    }

    /* An icon of Font Awesome's solid font, as PatternFly's CSS draws it (hidden from readers). */
    function icon(name) {
        return h("i", { class: "fas fa-fw fa-" + name, "aria-hidden": "true" });
    }

    /* A text input or select in PatternFly's form control (a select with its toggle icon). */
    function control(input) {
        return h("span", { class: "pf-v5-c-form-control" }, input,
                 input.tagName === "SELECT"
                     ? h("span", { class: "pf-v5-c-form-control__utilities" },
                         h("span", { class: "pf-v5-c-form-control__toggle-icon" }, icon("caret-down")))
                     : null);
    }

    /* A form's helper text: one item, its text a node or a string (kind: "error" and so on). */
    function helperText(id, content, kind) {
        return h("div", { class: "pf-v5-c-form__helper-text", id: id, "aria-live": kind === "error" ? "polite" : null },
                 h("div", { class: "pf-v5-c-helper-text" },
                   h("div", { class: "pf-v5-c-helper-text__item" + (kind ? " pf-m-" + kind : "") },
                     typeof content === "string" ? h("span", { class: "pf-v5-c-helper-text__item-text", text: content })
                         : content)));
    }

    /* A form group: its label (for the control of id `id`), the control and its helper text. */
    function group(labelText, id, controlNode, help) {
        return h("div", { class: "pf-v5-c-form__group" },
                 h("div", { class: "pf-v5-c-form__group-label" },
                   h("label", { class: "pf-v5-c-form__label", for: id },
                     h("span", { class: "pf-v5-c-form__label-text", text: labelText }))),
                 h("div", { class: "pf-v5-c-form__group-control" }, controlNode, help));
    }

    /* A label of PatternFly's, compact: its colour (green, blue; grey is PatternFly's default). */
    function label(color, text) {
        return h("span", { class: "pf-v5-c-label pf-m-compact" + (color === "grey" ? "" : " pf-m-" + color) },
                 h("span", { class: "pf-v5-c-label__content", text: text }));
    }

    let nextId = 0;
    function uid(prefix) {
        nextId += 1;
        return "ph-" + prefix + "-" + nextId;
    }

    const ALERT_ICONS = { success: "check-circle", danger: "exclamation-circle", warning: "exclamation-triangle",
                          info: "info-circle" };
    function alertBox(kind, title, text, dismiss) {
        const box = h("div", { class: "pf-v5-c-alert pf-m-inline pf-m-" + kind, role: kind === "danger" ? "alert" : "status" },
                      h("div", { class: "pf-v5-c-alert__icon" }, icon(ALERT_ICONS[kind])),
                      h("p", { class: "pf-v5-c-alert__title", text: title }));
        if (dismiss)
            box.appendChild(h("div", { class: "pf-v5-c-alert__action" },
                              button(null, "plain", function () { box.remove() }, { "aria-label": "Close " + title },
                                     icon("times"))));
        if (text)
            box.appendChild(h("div", { class: "pf-v5-c-alert__description" }, h("p", { text: text })));
        return box;
    }

    function notify(kind, title, text) {
        alerts.replaceChildren(alertBox(kind, title, text, true));
        alerts.scrollIntoView({ block: "nearest" });
    }

    function clearAlerts() {
        alerts.replaceChildren();
    }

    function formatSize(bytes) {
        if (bytes < 1024)
            return bytes + " B";
        const units = ["KiB", "MiB", "GiB"];
        let value = bytes / 1024;
        let unit = 0;
        while (value >= 1024 && unit < units.length - 1) {
            value /= 1024;
            unit += 1;
        }
        return value.toFixed(value < 10 ? 1 : 0) + " " + units[unit];
    }

    function plural(n, word) {
        return n + " " + word + (n === 1 ? "" : "s");
    }

    function summary(payload) {
        return [TYPES[payload.type] || payload.type, payload.target || "target to be chosen", payload.label,
            plural(payload.files, "file")].concat(payload.sealed ? ["sealed"] : []).join(" · ");
    }

    function stateLabel(running) {
        return label(running ? "green" : "grey", running ? "Running" : "Shut off");
    }

    /* -- the command ------------------------------------------------------------------ */

    /* The libvirt connection the page manages: the manifest's "uri" (qemu:///system, the
     * system connection cockpit-machines calls "system"), which /etc/cockpit/payloadhook.override.json
     * may change ({"config": {"uri": "..."}}); an empty one leaves it to the command (libvirt's
     * default URI). Explicit by default: a user without administrative access runs the reads
     * as themselves, whose libvirt default would be their own qemu:///session. */
    const manifest = (cockpit.manifests && cockpit.manifests.payloadhook) || {};
    const URI = manifest.config && typeof manifest.config.uri === "string" ? manifest.config.uri : "qemu:///system";

    /* One run of the payloadhook command. Its refusals are one line on standard error,
     * which err: "message" makes the rejection's message. */
    function payloadhook(args, superuser) {
        const argv = ["payloadhook"].concat(URI ? ["-c", URI] : [], args);
        return cockpit.spawn(argv, { superuser: superuser, err: "message" });
    }

    /* A read with superuser "try", as a native Promise: a handler that throws rejects the
       chain (cockpit's own promises let the exception escape, and the chain never settles). */
    function query(args) {
        return Promise.resolve(payloadhook(args, "try"));
    }

    function failure(ex) {
        const text = ex && ex.message ? String(ex.message).trim() : String(ex);
        if (ex && ex.problem === "not-found")
            return "payloadhook: the payloadhook command is not installed on this host";
        if (ex && ex.problem === "access-denied")
            return "payloadhook: administrative access is needed for this";
        return text.split("\n").filter(Boolean).pop() || "payloadhook: failed";
    }

    function jumpToMachines(name) {
        cockpit.jump("/machines#/vm?name=" + encodeURIComponent(name) + "&connection=system");
    }

    /* -- the list ---------------------------------------------------------------------- */

    /* The list as the command reads it: a read's answer, applied by read(). */
    function fetchList() {
        return query(["list", "--json"]).then(function (out) {
            return { domains: JSON.parse(out).domains, listError: null };
        }, function (ex) {
            return { domains: null, listError: failure(ex) };
        });
    }

    function renderList() {
        const filterId = uid("filter");
        const filter = h("input", { type: "search", id: filterId,
                                    value: state.filter, placeholder: "Filter by name",
                                    on: { input: function (event) { state.filter = event.target.value; renderRows() } } });
        const tbody = h("tbody");
        const count = h("span", { class: "ph-count", "aria-live": "polite" });
        const table = h("table", { class: "pf-v5-c-table pf-m-compact", id: "domains", "aria-label": "Domains" },
                        h("thead", null, h("tr", null,
                                           h("th", { scope: "col", text: "Name" }),
                                           h("th", { scope: "col", text: "State" }),
                                           h("th", { scope: "col", text: "Payloads" }),
                                           h("th", { scope: "col", class: "pf-m-fit-content" },
                                             h("span", { class: "pf-v5-screen-reader", text: "Actions" })))),
                        tbody);

        function renderRows() {
            const wanted = state.filter.trim().toLowerCase();
            const shown = (state.domains || []).filter(function (d) {
                return d.domain.toLowerCase().indexOf(wanted) >= 0;
            });
            count.textContent = shown.length + " of " + plural((state.domains || []).length, "domain");
            tbody.replaceChildren();
            for (const d of shown) {
                const payloads = d.error
                    ? h("span", { class: "ph-error-text", text: "Unreadable: " + d.error })
                    : d.payloads.length === 0
                        ? h("span", { class: "ph-muted", text: "No payload" })
                        : h("ul", { class: "ph-plain-list" }, d.payloads.map(function (p) {
                            return h("li", { text: summary(p) });
                        }));
                tbody.appendChild(h("tr", { "data-domain": d.domain },
                    h("th", { scope: "row", "data-label": "Name" },
                      button(printable(d.domain), "link pf-m-inline", function () { open(d) },
                             { "aria-label": "Payloads of " + printable(d.domain) }),
                      h("span", { class: "ph-uuid", text: d.uuid }),
                      lookalike(d.domain).length
                          ? h("span", { class: "ph-name-flag", text: "Look-alike name: " + lookalike(d.domain).join("; ") })
                          : null),
                    h("td", { "data-label": "State" }, stateLabel(d.running)),
                    h("td", { "data-label": "Payloads" }, payloads),
                    h("td", { class: "pf-m-fit-content pf-m-nowrap ph-actions" },
                      button(state.admin ? "Edit payloads" : "View payloads", "secondary",
                             function () { open(d) }, { "data-action": "open" }),
                      button("Virtual machines", "link", function () { jumpToMachines(d.domain) },
                             { "aria-label": "Open " + d.domain + " in Virtual machines" }))));
            }
            if (shown.length === 0)
                tbody.appendChild(h("tr", null, h("td", { colspan: "4", class: "ph-empty",
                    text: state.domains && state.domains.length ? "No domain matches the filter." : "This host has no domains." })));
        }

        const toolbar = h("div", { class: "pf-v5-c-toolbar" },
                          h("div", { class: "pf-v5-c-toolbar__content" },
                            h("div", { class: "pf-v5-c-toolbar__content-section" },
                              h("div", { class: "pf-v5-c-toolbar__item pf-m-search-filter" },
                                h("label", { class: "pf-v5-screen-reader", for: filterId, text: "Filter domains by name" }),
                                control(filter)),
                              h("div", { class: "pf-v5-c-toolbar__item ph-count-item" }, count),
                              h("div", { class: "pf-v5-c-toolbar__item pf-m-align-right" },
                                button("Refresh", "secondary", read, { disabled: pending() })))));
        const body = [toolbar];
        if (state.listError)
            body.push(alertBox("danger", "Cannot list the domains", state.listError));
        else if (state.domains === null)
            body.push(h("p", { class: "ph-muted", text: "Loading…" }));
        else {
            renderRows();
            body.push(table);
        }
        if (!state.admin)
            body.unshift(alertBox("info", "Read-only",
                                  "Administrative access is needed to change payloads; turn it on in Cockpit to edit."));
        main.replaceChildren(h("section", { class: "pf-v5-c-card", "aria-label": "Domains" },
                               h("div", { class: "pf-v5-c-card__body" }, body)));
    }

    /* -- a domain ------------------------------------------------------------------------ */

    /* A domain is opened by a link, #/domain?name=NAME&uuid=UUID (the list's), or
       #/domain?name=NAME. The link is what to look for, never what to show: a link can be made
       by anyone, a domain definer for one (name=prod-db&uuid=<their own domain>). So the page
       names a domain to the command by UUID only, as uuid:UUID (libvirt, as virsh, would read a name of
       digits as an id, and one written like a UUID as that UUID), resolves a name-only link by
       exact name in `list --json`, shows only what `show --json` reports, and acts on the UUID
       that answer gave; it refuses a link whose name and UUID are not one domain's. */
    function open(d) {
        cockpit.location.go(["domain"], { name: d.domain, uuid: d.uuid });
    }

    const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

    /* A domain's name as the page titles it: control and format characters (newlines,
       zero-width and bidirectional marks), which could make one name look like another, written
       as \u{…}. */
    function printable(value) {
        return String(value).replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, function (c) {
            return "\\u{" + c.codePointAt(0).toString(16) + "}";
        });
    }

    /* What can make a domain's name look like another's, in words (empty for a name of printable
       ASCII with single spaces inside): each character outside printable ASCII written out as
       U+XXXX with its place (a Cyrillic о, a non-breaking hyphen or a zero-width space look
       like ASCII or like nothing), and spaces at either end or repeated, which no title shows.
       Names are told apart by the UUID, shown beside each. */
    function lookalike(value) {
        const chars = Array.from(String(value));
        const codes = [];
        chars.forEach(function (c, index) {
            if (/^[\x20-\x7e]$/.test(c))
                return;
            const code = "U+" + c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
            if (!codes.some(function (seen) { return seen.code === code }))
                codes.push({ code: code, at: index + 1 });
        });
        const said = [];
        if (codes.length)
            said.push("characters outside ASCII: " + codes.slice(0, 12).map(function (c) {
                return c.code + " (character " + c.at + ")";
            }).join(", ") + (codes.length > 12 ? ", \u2026" : ""));
        if (chars[0] === " ")
            said.push("a space at its start");
        if (chars.length > 0 && chars[chars.length - 1] === " ")
            said.push("a space at its end");
        if (chars.join("").indexOf("  ") >= 0)
            said.push("repeated spaces");
        return said;
    }

    /* A look-alike name's warning, or null. */
    function lookalikeWarning(name) {
        const said = lookalike(name);
        if (said.length === 0)
            return null;
        return alertBox("warning", "This name can look like another domain's",
                        "This name holds " + said.join("; ") + ". Tell the domains apart by their UUID.");
    }

    /* A value from a link or a domain definer, as a refusal quotes it: printable, in quotes, at
       most 80 characters. */
    function quoted(value) {
        const text = Array.from(String(value));
        return "\u201c" + printable(text.slice(0, 80).join("")) + (text.length > 80 ? "\u2026" : "") + "\u201d";
    }

    /* The link's refusal, when it cannot name one domain (a read's error, with no actions). */
    function linkRefused(text) {
        return { title: "This link is refused", text: text + " Nothing was shown or changed: open the domain " +
                 "from the list of Payloads." };
    }

    /* The link of the location: {name, uuid} (uuid null for a name-only link), or
       {refused: why}. Options given twice are arrays in cockpit.location: refused. */
    function linkOf(options) {
        const name = options.name;
        const uuid = options.uuid;
        if (typeof name !== "string" || (uuid !== undefined && typeof uuid !== "string"))
            return { refused: linkRefused("It gives no single name and UUID.") };
        if (uuid !== undefined && !UUID_RE.test(uuid.toLowerCase()))
            return { refused: linkRefused("Its UUID " + quoted(uuid) + " is not a UUID.") };
        return { name: name, uuid: uuid === undefined ? null : uuid.toLowerCase() };
    }

    /* The UUID of the domain named exactly `name`, from `list --json` (never the command's
       lookup by name, which takes ids and UUIDs first). */
    function uuidNamed(name) {
        return query(["list", "--json"]).then(function (out) {
            const found = JSON.parse(out).domains.filter(function (d) { return d.domain === name });
            if (found.length !== 1)
                throw { refused: linkRefused("No domain on this host is named " + quoted(name) + ".") };
            return found[0].uuid;
        });
    }

    /* A domain as the command reads it for the link: a read's answer, applied by read(). */
    function fetchDetail(link) {
        const keys = query(["key", "list", "--json"]).then(function (out) {
            const current = JSON.parse(out).keys.filter(function (k) { return k.current });
            return current.length ? current[0].id : null;
        }, function () {
            return null; /* no key directory, or not readable without admin */
        });
        const uuid = link.uuid !== null ? Promise.resolve(link.uuid) : uuidNamed(link.name);
        const shown = uuid.then(function (wanted) {
            return query(["show", "uuid:" + wanted, "--json"]).then(function (out) {
                const d = JSON.parse(out);
                if (d.uuid !== wanted)
                    throw { refused: linkRefused("The command answered for another domain than " + quoted(wanted) + ".") };
                if (d.domain !== link.name) {
                    const said = lookalike(d.domain);
                    throw { refused: linkRefused("It names the domain " + quoted(link.name) + ", but its UUID " +
                                                 wanted + " is the domain " + quoted(d.domain) + "." +
                                                 (said.length ? " That name holds " + said.join("; ") + "." : "")) };
                }
                return d;
            });
        });
        return Promise.all([shown, keys]).then(function (both) {
            return { detail: both[0], detailError: null, currentKey: both[1] };
        }, function (ex) {
            return { detail: null, currentKey: null,
                     detailError: ex && ex.refused ? ex.refused : { title: "Cannot show this domain", text: failure(ex) } };
        });
    }

    /* What the command is given for the domain shown: the UUID its `show --json` reported, as
       uuid:UUID, which the command looks up by UUID only (a bare UUID it would take, where no
       domain has that UUID, for the name of a domain named so). */
    function ident() {
        return "uuid:" + state.detail.uuid;
    }

    /* Whether a command runs whose answer the screen does not show yet: an edit, or a read. */
    function pending() {
        return state.busy || state.issued !== state.applied;
    }

    /* The page's busy state, on the page (aria-busy) and for tests (data-busy). */
    function markBusy() {
        const busy = pending();
        main.setAttribute("aria-busy", busy ? "true" : "false");
        document.body.setAttribute("data-busy", busy ? "true" : "false");
    }

    /* Read the view shown (the list, or the link's domain) again. Each read has a number; only
       the latest one started is applied (an earlier answer, or one for a view left meanwhile,
       is dropped), and with it the outcome of an edit that waited for it: the alert and the
       domain as read after the edit appear together. data-ph-read is the number applied. */
    function read() {
        state.issued += 1;
        const number = state.issued;
        const link = state.link;
        markBusy();
        const answer = link === null ? fetchList()
            : link.refused ? Promise.resolve({ detail: null, detailError: link.refused, currentKey: null })
                : fetchDetail(link); /* nothing of a refused link goes to the command */
        return answer.then(function (answer) {
            if (number !== state.issued)
                return;
            Object.assign(state, answer);
            if (link !== null && state.form === null && state.detail !== null)
                state.form = newForm();
            state.applied = number;
            const outcome = state.outcome;
            state.outcome = null;
            if (outcome)
                state.busy = false;
            render();
            if (outcome)
                tell(outcome);
            document.body.setAttribute("data-ph-read", String(number));
            document.body.setAttribute("data-ready", "true");
        });
    }

    /* An edit's end: its alert waits for the domain read again. `about` is the domain the edit
       was for ({domain, uuid}, from its `show --json`). */
    function finish(about, kind, title, text) {
        state.outcome = { about: about, kind: kind, title: title, text: text };
        return read();
    }

    /* An edit's alert over the read that follows it: as it is with the domain it was about, and
       naming that domain by name and UUID over any other view (the page was moved on while the
       edit ran: its alert must not read as about the domain now shown). */
    function tell(outcome) {
        const here = state.link !== null && state.detail !== null && state.detail.uuid === outcome.about.uuid;
        const title = here ? outcome.title
            : outcome.title + ": " + printable(outcome.about.domain) + " (UUID " + outcome.about.uuid +
              "), not the domain shown";
        notify(outcome.kind, title, outcome.text);
    }

    function newForm() {
        /* seal: null leaves it to the command, which seals where the host has a key (the page
           may not see the keys: a user without administrative access cannot read them);
           true or false once the box is ticked or unticked. */
        return { kind: "files", type: "cdrom", target: "", label: "", seal: null, files: [], slots: {} };
    }

    function payloadCard(title, payloads, live) {
        const body = [];
        if (payloads.length === 0)
            body.push(h("p", { class: "ph-muted", text: "No payload." }));
        for (const p of payloads) {
            const head = TYPES[p.type] + " on " + (p.target || "a disk to be chosen") + ", label " + p.label + ", " +
                plural(p.files.length, "file") + ", " + formatSize(p.size) + (p.sealed ? ", sealed" : "");
            const rows = p.files.map(function (f) {
                return h("tr", null,
                         h("td", { "data-label": "Path on the medium", class: "ph-name", text: f.name }),
                         h("td", { "data-label": "Size", text: formatSize(f.size) }),
                         h("td", { "data-label": "SHA-256", class: f.sealed ? "" : "ph-hash" },
                           f.sealed ? label("blue", "Sealed (key " + f.key + ")")
                               : f.sha256));
            });
            const actions = !live && state.admin
                ? button("Disable", "danger", function () { detach(p) },
                         { "aria-label": "Disable the " + TYPES[p.type] + " payload on " + (p.target || p.type),
                           disabled: pending(), "data-action": "detach" })
                : null;
            body.push(h("div", { class: "ph-payload", "data-type": p.type, "data-target": p.target || "" },
                        h("div", { class: "ph-payload-head" }, h("h3", { class: "pf-v5-c-title pf-m-md", text: head }), actions),
                        h("table", { class: "pf-v5-c-table pf-m-compact", "aria-label": "Files of " + head },
                          h("thead", null, h("tr", null, h("th", { scope: "col", text: "Path on the medium" }),
                                             h("th", { scope: "col", text: "Size" }),
                                             h("th", { scope: "col", text: "SHA-256" }))),
                          h("tbody", null, rows))));
        }
        return h("section", { class: "pf-v5-c-card", "aria-label": title },
                 h("div", { class: "pf-v5-c-card__title" }, h("h2", { class: "pf-v5-c-card__title-text", text: title })),
                 h("div", { class: "pf-v5-c-card__body" }, body));
    }

    function renderDetail() {
        const d = state.detail;
        const body = [];
        if (state.detailError) {
            body.push(alertBox("danger", state.detailError.title, state.detailError.text));
        } else if (d === null) {
            body.push(h("p", { class: "ph-muted", text: "Loading…" }));
        } else {
            body.push(h("div", { class: "ph-domain-head" },
                        h("span", { class: "ph-muted", text: "State" }), stateLabel(d.running),
                        button("Open in Virtual machines", "link", function () { jumpToMachines(d.domain) }),
                        button("Refresh", "secondary", read, { disabled: pending() })));
            body.push(payloadCard(d.running ? "Payloads at the next start" : "Payloads", d.payloads || [], false));
            if (d.running_payloads)
                body.push(payloadCard("Running now with", d.running_payloads, true));
            if (state.admin)
                body.push(renderForm());
            else
                body.push(alertBox("info", "Read-only",
                                   "Administrative access is needed to change payloads; turn it on in Cockpit to edit."));
        }
        main.replaceChildren.apply(main, body);
    }

    /* -- the form that enables a payload --------------------------------------------------- */

    function renderForm() {
        const form = state.form;
        const preset = PRESETS[form.kind];
        const problems = h("div", { class: "ph-problems", id: "problems", "aria-live": "polite" });
        const sendButtons = [];

        function field(labelText, input, help, id) {
            return group(labelText, id, control(input), help ? helperText(id + "-help", help) : null);
        }

        /* What stops sending, in the command's words; shown as typed. */
        function check() {
            const messages = [];
            if (form.kind === "files") {
                const names = form.files.map(function (f) { return f.name });
                const each = rules.checkNames(names, form.type);
                form.files.forEach(function (f, index) {
                    f.message = each[index];
                    if (f.messageNode) {
                        f.messageNode.textContent = each[index] || "";
                        f.messageNode.parentNode.parentNode.hidden = !each[index];
                        f.input.setAttribute("aria-invalid", each[index] ? "true" : "false");
                        f.input.parentNode.classList.toggle("pf-m-error", Boolean(each[index]));
                    }
                });
                messages.push.apply(messages, each.filter(Boolean));
                const label = rules.checkLabel(form.label, form.type);
                if (label)
                    messages.push(label);
                const capacity = rules.checkCapacity(form.files.map(function (f) { return f.size }), form.type);
                if (capacity)
                    messages.push(capacity);
            }
            /* nothing chosen yet is no error, but nothing to send either */
            const empty = form.kind === "files" ? form.files.length === 0
                : preset.slots.some(function (slot) { return slot[1] && !form.slots[slot[0]] });
            problems.replaceChildren();
            if (messages.length)
                problems.appendChild(h("ul", { class: "ph-problem-list" },
                                       messages.map(function (m) { return h("li", { text: m }) })));
            sendButtons.forEach(function (b) { b.disabled = pending() || empty || messages.length > 0 });
            return messages;
        }

        const kindName = uid("kind");
        const kindsLabel = uid("kinds-label");
        const kinds = h("div", { class: "pf-v5-c-form__group", role: "radiogroup", "aria-labelledby": kindsLabel,
                                 "aria-describedby": kindsLabel + "-help" },
                        h("div", { class: "pf-v5-c-form__group-label pf-m-no-padding-top" },
                          h("span", { class: "pf-v5-c-form__label", id: kindsLabel },
                            h("span", { class: "pf-v5-c-form__label-text", text: "What to give the domain" }))),
                        h("div", { class: "pf-v5-c-form__group-control pf-m-inline" },
                          Object.keys(PRESETS).map(function (kind) {
                              const id = uid("kind");
                              return h("div", { class: "pf-v5-c-radio" },
                                       h("input", { class: "pf-v5-c-radio__input", type: "radio", name: kindName, id: id,
                                                    value: kind, checked: form.kind === kind, "data-kind": kind,
                                                    on: { change: function () { form.kind = kind; render() } } }),
                                       h("label", { class: "pf-v5-c-radio__label", for: id, text: PRESETS[kind].title }));
                          })),
                        helperText(kindsLabel + "-help", preset.help));

        const fields = [kinds];
        if (form.kind === "files") {
            const typeId = uid("type");
            const row = [];
            row.push(field("Medium", h("select", { id: typeId, name: "type",
                on: { change: function (event) { form.type = event.target.value; check() } } },
                Object.keys(TYPES).map(function (t) {
                    const option = h("option", { value: t, text: TYPES[t] });
                    option.selected = form.type === t;
                    return option;
                })), null, typeId));
            const labelId = uid("label");
            row.push(field("Label", h("input", { id: labelId, name: "label",
                value: form.label, placeholder: "PAYLOAD", "aria-describedby": labelId + "-help",
                on: { input: function (event) { form.label = event.target.value; check() } } }),
                "Up to 32 characters on a CD-ROM, 11 on a floppy (upper-cased).",
                labelId));
            const targetId = uid("target");
            row.push(field("Disk target", h("input", { id: targetId, name: "target",
                value: form.target, placeholder: "automatic", "aria-describedby": targetId + "-help",
                on: { input: function (event) { form.target = event.target.value.trim() } } }),
                "hdc, sda, fda…; empty: the domain's payload disk, or a new one.", targetId));
            fields.push(h("div", { class: "ph-form-row" }, row));
            fields.push(renderFiles(form, check));
        } else {
            for (const slot of preset.slots)
                fields.push(renderSlot(form, slot[0], slot[1], check));
        }

        const sealId = uid("seal");
        fields.push(h("div", { class: "pf-v5-c-form__group" },
                      h("div", { class: "pf-v5-c-check" },
                        h("input", { class: "pf-v5-c-check__input", type: "checkbox", id: sealId, name: "seal",
                                     checked: form.seal !== null ? form.seal : state.currentKey !== null,
                                     disabled: state.currentKey === null,
                                     "aria-describedby": sealId + "-help",
                                     on: { change: function (event) { form.seal = event.target.checked } } }),
                        h("label", { class: "pf-v5-c-check__label", for: sealId, text: "Seal the files" }),
                        h("span", { class: "pf-v5-c-check__description", id: sealId + "-help",
                                    text: state.currentKey
                                   ? "Encrypted under this host's key " + state.currentKey + ", for this domain only: " +
                                     "nobody who can read the domain's definition can read them."
                                   : "This host has no sealing key ('payloadhook key new' makes one): unsealed files " +
                                        "can be read by anyone who may read the domain's definition." }))));

        const enable = button("Enable payload", "primary", function () { send("attach") },
                              { "data-action": "attach" });
        sendButtons.push(enable);
        const actions = [enable];
        if (!state.detail.running) {
            const once = button("Run once with this payload", "secondary", function () { send("run-once") },
                                { "data-action": "run-once" });
            sendButtons.push(once);
            actions.push(once);
        }
        const formNode = h("form", { class: "pf-v5-c-form", id: "payload-form", novalidate: true,
                                     on: { submit: function (event) { event.preventDefault() } } },
                           h("p", { class: "ph-muted", text: "A payload of the same medium replaces the one the domain has. " +
                                    "The files go to the payloadhook command and are not kept by this page." }),
                           fields, problems,
                           h("div", { class: "pf-v5-c-form__group pf-m-action" },
                             h("div", { class: "pf-v5-c-form__actions" }, actions)));
        check();
        return h("section", { class: "pf-v5-c-card", "aria-label": "Enable a payload" },
                 h("div", { class: "pf-v5-c-card__title" },
                   h("h2", { class: "pf-v5-c-card__title-text", text: "Enable a payload" })),
                 h("div", { class: "pf-v5-c-card__body" }, formNode));
    }

    /* One preset slot: a single file. */
    function renderSlot(form, slot, required, check) {
        const id = uid("slot");
        const chosen = form.slots[slot];
        const status = h("span", { class: "pf-v5-c-helper-text__item-text", "data-slot-status": slot,
                                   text: chosen ? chosen.file.name + ", " + formatSize(chosen.size) : "no file chosen" });
        const input = h("input", { type: "file", id: id, "data-slot": slot,
                                   "aria-describedby": id + "-help",
                                   on: { change: function (event) {
                                       const file = event.target.files[0];
                                       if (file)
                                           form.slots[slot] = { file: file, size: file.size };
                                       else
                                           delete form.slots[slot];
                                       event.target.value = "";
                                       const c = form.slots[slot];
                                       status.textContent = c ? c.file.name + ", " + formatSize(c.size) : "no file chosen";
                                       check();
                                   } } });
        return group(slot + (required ? "" : " (optional)"), id, control(input),
                     helperText(id + "-help", status));
    }

    /* The file list: picker, folder picker, drag and drop; each file's path on the medium. */
    function renderFiles(form, check) {
        const tbody = h("tbody");
        const picker = h("input", { type: "file", multiple: true, id: uid("files"), class: "ph-hidden-input",
                                    name: "files", "data-input": "files", tabindex: "-1",
                                    on: { change: function (event) { add(Array.from(event.target.files).map(named)); event.target.value = "" } } });
        const folder = h("input", { type: "file", multiple: true, webkitdirectory: true, id: uid("folder"),
                                    class: "ph-hidden-input", name: "folder", "data-input": "folder", tabindex: "-1",
                                    on: { change: function (event) { add(Array.from(event.target.files).map(inFolder)); event.target.value = "" } } });

        function named(file) {
            return { file: file, name: file.name, size: file.size };
        }
        /* A folder's files keep their paths below the folder, as the command's DIR input does. */
        function inFolder(file) {
            const path = file.webkitRelativePath || file.name;
            const cut = path.indexOf("/");
            return { file: file, name: cut >= 0 ? path.slice(cut + 1) : path, size: file.size };
        }

        function add(items) {
            form.files.push.apply(form.files, items);
            renderRows();
            check();
        }

        function renderRows() {
            tbody.replaceChildren();
            form.files.forEach(function (item, index) {
                const id = uid("name");
                item.input = h("input", { class: "ph-name-input", id: id, value: item.name,
                                          "data-file-index": String(index), "aria-describedby": id + "-message",
                                          on: { input: function (event) { item.name = event.target.value; check() } } });
                item.messageNode = h("span", { class: "pf-v5-c-helper-text__item-text" });
                const message = helperText(id + "-message", item.messageNode, "error");
                message.firstChild.hidden = true;
                tbody.appendChild(h("tr", null,
                    h("td", { "data-label": "Path on the medium" },
                      h("label", { class: "pf-v5-screen-reader", for: id, text: "Path on the medium of file " + (index + 1) }),
                      control(item.input), message),
                    h("td", { "data-label": "Size", text: formatSize(item.size) }),
                    h("td", { class: "pf-m-fit-content ph-actions" },
                      button("Remove", "link pf-m-danger", function () {
                          form.files.splice(index, 1);
                          renderRows();
                          check();
                          const next = tbody.querySelector("button") || addButton;
                          next.focus();
                      }, { "aria-label": "Remove " + item.name }))));
            });
            if (form.files.length === 0)
                tbody.appendChild(h("tr", null, h("td", { colspan: "3", class: "ph-empty",
                                                          text: "No files yet." })));
        }

        const addButton = button("Add files…", "secondary", function () { picker.click() }, { "data-action": "add-files" });
        const drop = h("div", { class: "pf-v5-c-multiple-file-upload pf-m-horizontal", id: "drop-zone" },
                       h("div", { class: "pf-v5-c-multiple-file-upload__main" },
                         h("div", { class: "pf-v5-c-multiple-file-upload__title" },
                           h("div", { class: "pf-v5-c-multiple-file-upload__title-icon" }, icon("upload")),
                           h("div", { class: "pf-v5-c-multiple-file-upload__title-text", text: "Drop files or folders here" })),
                         h("div", { class: "pf-v5-c-multiple-file-upload__upload" },
                           addButton, " ",
                           button("Add a folder…", "secondary", function () { folder.click() }, { "data-action": "add-folder" })),
                         h("div", { class: "pf-v5-c-multiple-file-upload__info",
                                    text: "Each file's path on the medium can be changed below." })),
                       picker, folder);
        drop.addEventListener("dragover", function (event) {
            event.preventDefault();
            drop.classList.add("pf-m-drag-over");
        });
        drop.addEventListener("dragleave", function () { drop.classList.remove("pf-m-drag-over") });
        drop.addEventListener("drop", function (event) {
            event.preventDefault();
            drop.classList.remove("pf-m-drag-over");
            dropped(event.dataTransfer).then(add);
        });
        renderRows();
        const filesLabel = uid("files-label");
        return h("div", { class: "pf-v5-c-form__group", role: "group", "aria-labelledby": filesLabel },
                 h("div", { class: "pf-v5-c-form__group-label" },
                   h("span", { class: "pf-v5-c-form__label", id: filesLabel },
                     h("span", { class: "pf-v5-c-form__label-text", text: "Files" }))),
                 h("div", { class: "pf-v5-c-form__group-control" },
                   drop,
                   h("table", { class: "pf-v5-c-table pf-m-compact ph-files", id: "files",
                                "aria-label": "Files to send" },
                     h("thead", null, h("tr", null, h("th", { scope: "col", text: "Path on the medium" }),
                                        h("th", { scope: "col", text: "Size" }),
                                        h("th", { scope: "col" }, h("span", { class: "pf-v5-screen-reader", text: "Actions" })))),
                     tbody)));
    }

    /* The files of a drop, folders walked: each named by its path below the dropped item
     * (a dropped folder's own name is not kept, as with the folder picker). */
    function dropped(transfer) {
        const entries = Array.from(transfer.items || []).map(function (item) {
            return item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
        });
        if (entries.length === 0 || entries.some(function (e) { return e === null }))
            return Promise.resolve(Array.from(transfer.files).map(function (file) {
                return { file: file, name: file.name, size: file.size };
            }));
        function walk(entry, prefix) {
            if (entry.isFile)
                return new Promise(function (resolve, reject) { entry.file(resolve, reject) }).then(function (file) {
                    return [{ file: file, name: prefix + entry.name, size: file.size }];
                });
            const reader = entry.createReader();
            const all = [];
            function more() { /* readEntries answers in batches until an empty one */
                return new Promise(function (resolve, reject) { reader.readEntries(resolve, reject) }).then(function (batch) {
                    if (batch.length === 0)
                        return all;
                    all.push.apply(all, batch);
                    return more();
                });
            }
            return more().then(function (children) {
                return Promise.all(children.map(function (child) {
                    return walk(child, prefix === null ? "" : prefix + entry.name + "/");
                }));
            }).then(function (lists) { return [].concat.apply([], lists) });
        }
        return Promise.all(entries.map(function (entry) {
            return walk(entry, entry.isFile ? "" : null);
        })).then(function (lists) { return [].concat.apply([], lists) });
    }

    /* A file's content as base64, read only now, when it is sent. */
    function base64Of(file) {
        return new Promise(function (resolve, reject) {
            const reader = new FileReader();
            reader.onload = function () {
                const url = reader.result;
                resolve(url.slice(url.indexOf(",") + 1));
            };
            reader.onerror = function () { reject(new Error("payloadhook: cannot read " + file.name + " in the browser")) };
            reader.readAsDataURL(file);
        });
    }

    function dropFiles(form) {
        form.files = [];
        form.slots = {};
    }

    /* The command line (no content) and the files to send, for the form as it is. */
    function request(verb) {
        const form = state.form;
        const args = [verb, ident()];
        let entries;
        if (form.kind === "files") {
            args.push("--type", form.type);
            if (form.target)
                args.push("--target", form.target);
            if (form.label)
                args.push("--label", form.label);
            entries = form.files.map(function (f) { return { name: f.name, file: f.file } });
        } else {
            const preset = PRESETS[form.kind];
            const used = preset.slots.map(function (s) { return s[0] }).filter(function (s) { return form.slots[s] });
            entries = used.map(function (s) { return { name: s, file: form.slots[s].file } });
            if (form.kind === "sysprep")
                args.push(preset.flag, "json:" + used[0]);
            else
                args.push(preset.flag, used.map(function (s) { return s + "=json:" + s }).join(","));
        }
        if (form.seal !== null)
            args.push(form.seal ? "--seal" : "--no-seal");
        args.push("--files-json", "-");
        return { args: args, entries: entries };
    }

    function send(verb) {
        if (pending() || state.detail === null)
            return;
        const name = state.detail.domain;
        const about = { domain: state.detail.domain, uuid: state.detail.uuid };
        const form = state.form;
        const req = request(verb);
        state.busy = true;
        clearAlerts();
        render();
        Promise.all(req.entries.map(function (e) { return base64Of(e.file) })).then(function (contents) {
            let documentText = JSON.stringify({ files: req.entries.map(function (e, i) {
                return { name: e.name, content: contents[i] };
            }) });
            const proc = payloadhook(req.args, "require");
            proc.input(documentText);
            /* sent: drop the content and the handles to the files */
            documentText = null;
            contents.fill(null);
            req.entries.length = 0;
            dropFiles(form);
            return proc;
        }).then(function (out) {
            if (state.form === form)
                state.form = newForm();
            return finish(about, "success", verb === "run-once" ? printable(name) + " started once with the payload" : "Payload enabled",
                          out.trim().split("\n").pop());
        }, function (ex) {
            req.entries.length = 0;
            dropFiles(form); /* the rest of the form stays, to be corrected */
            return finish(about, "danger", verb === "run-once" ? "Run once refused" : "Payload refused",
                          failure(ex) + " (the files were not kept: add them again)");
        });
    }

    function detach(payload) {
        if (pending() || state.detail === null)
            return;
        const about = { domain: state.detail.domain, uuid: state.detail.uuid };
        state.busy = true;
        clearAlerts();
        const which = payload.target ? ["--target", payload.target] : ["--type", payload.type];
        const proc = payloadhook(["detach", ident()].concat(which), "require");
        render();
        Promise.resolve(proc).then(function (out) {
            return finish(about, "success", "Payload disabled", out.trim().split("\n").pop());
        }, function (ex) {
            return finish(about, "danger", "Disable refused", failure(ex));
        });
    }

    /* -- routing --------------------------------------------------------------------------- */

    function render() {
        const detail = state.link !== null;
        const shown = detail && state.detail !== null ? printable(state.detail.domain) : null;
        document.getElementById("breadcrumb").hidden = !detail;
        document.getElementById("breadcrumb-current").textContent = detail ? (shown !== null ? shown : "Domain") : "";
        document.getElementById("ph-title").textContent = shown !== null ? shown + ": payloads" : "Payloads";
        document.getElementById("ph-subtitle").hidden = detail;
        /* beside the title: the UUID the command reported, and a look-alike name's warning */
        const identity = document.getElementById("ph-identity");
        const warning = document.getElementById("ph-name-warning");
        identity.hidden = shown === null;
        identity.replaceChildren.apply(identity, shown === null ? []
            : [h("span", { class: "ph-identity-label", text: "UUID" }), " ",
               h("span", { id: "ph-uuid", text: state.detail.uuid })]);
        const flagged = shown === null ? null : lookalikeWarning(state.detail.domain);
        warning.hidden = flagged === null;
        warning.replaceChildren.apply(warning, flagged === null ? [] : [flagged]);
        document.body.setAttribute("data-view", detail ? "domain" : "list");
        if (detail)
            renderDetail();
        else
            renderList();
        markBusy();
    }

    function route() {
        const path = cockpit.location.path;
        const options = cockpit.location.options;
        const link = path[0] === "domain" && options.name !== undefined ? linkOf(options) : null;
        const same = link === null ? state.link === null
            : state.link !== null && !link.refused && !state.link.refused &&
                link.name === state.link.name && link.uuid === state.link.uuid;
        if (!same) {
            clearAlerts();
            state.link = link;
            state.detail = null;
            state.detailError = null;
            state.form = null; /* files picked for another domain are dropped, never sent here */
        }
        if (link === null)
            state.form = null;
        const reading = read();
        render(); /* busy, until the read is applied */
        return reading;
    }

    document.getElementById("back").addEventListener("click", function () { cockpit.location.go([]) });

    const permission = cockpit.permission({ admin: true });
    function permissionChanged() {
        const admin = permission.allowed === true;
        if (admin !== state.admin) {
            state.admin = admin;
            /* what a user without administrative access could not read (the keys, for one) is
               read again now */
            if (admin && state.link !== null)
                read();
            else
                render();
        }
    }
    permission.addEventListener("changed", permissionChanged);
    cockpit.addEventListener("locationchanged", route);
    state.admin = permission.allowed === true;
    route();
}());
