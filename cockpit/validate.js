/* The command's name, label and capacity rules (payloadhook/model.py, media/floppy.py),
 * checked in the browser as the administrator types, in the command's own words. The
 * command checks again, and its refusal is what counts: this only says it sooner. */
(function () {
    "use strict";

    const ISO_MAX_DEPTH = 8;
    const RR_NAME_MAX_BYTES = 255;
    const LFN_MAX_UNITS = 255;
    const FAT_PATH_MAX_UNITS = 260;
    const ISO_LABEL_MAX = 32;
    const FAT_LABEL_MAX = 11;
    const FAT_FORBIDDEN = '"*:<>?\\|';
    const FAT_LABEL_FORBIDDEN = FAT_FORBIDDEN + "+,./;=[]";
    /* A 1.44 MB floppy: 2880 sectors of 512 bytes, 33 of them boot sector, two FATs and the
     * root directory; one sector a cluster. */
    const SECTOR = 512;
    const FLOPPY_CLUSTERS = 2880 - 33;
    const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

    /* As payloadhook.errors.quote: in single quotes, escapes for what is not printable, cut
     * to 80 characters with an ellipsis. */
    function quote(value) {
        let text = value.length > 80 ? value.slice(0, 80) : value;
        if (CONTROL.test(text) || text.indexOf("\\") >= 0 || text.indexOf("'") >= 0) {
            text = Array.from(text).map(function (ch) {
                const code = ch.codePointAt(0);
                if (ch === "\n") return "\\n";
                if (ch === "\t") return "\\t";
                if (ch === "\r") return "\\r";
                if (ch === "\\") return "\\\\";
                if (ch === "'") return "\\'";
                if (CONTROL.test(ch))
                    return code < 0x100 ? "\\x" + code.toString(16).padStart(2, "0")
                        : "\\u" + code.toString(16).padStart(4, "0");
                return ch;
            }).join("");
        }
        return "'" + text + (value.length > 80 ? "…" : "") + "'";
    }

    /* Python's repr of one character, as the command's messages show a refused one. */
    function repr(ch) {
        return ch === "'" ? '"\'"' : ch === "\\" ? "'\\\\'" : "'" + ch + "'";
    }

    function utf16Units(text) {
        return text.length; /* JavaScript strings count UTF-16 units, as FAT and Joliet do */
    }

    function utf8Bytes(text) {
        return new TextEncoder().encode(text).length;
    }

    /* The command's message for a file name, or null when the name passes. */
    function checkName(name, type) {
        if (name === "")
            return "file name is empty";
        if (CONTROL.test(name))
            return "file name " + quote(name) + " contains a control character";
        if (name.startsWith("/"))
            return "file name " + quote(name) + " is absolute; names are relative paths";
        const parts = name.split("/");
        for (const part of parts) {
            if (part === "")
                return "file name " + quote(name) + " has an empty component ('//' or a trailing '/')";
            if (part === "." || part === "..")
                return "file name " + quote(name) + " has a '" + part + "' component";
        }
        if (type === "cdrom") {
            if (parts.length > ISO_MAX_DEPTH)
                return "file name " + quote(name) + " is nested deeper than " + ISO_MAX_DEPTH +
                    " directory levels, as ISO 9660 allows";
            for (const part of parts) {
                if (utf8Bytes(part) > RR_NAME_MAX_BYTES)
                    return "file name " + quote(name) + " has a component over " + RR_NAME_MAX_BYTES +
                        " bytes of UTF-8";
            }
        } else {
            for (const part of parts) {
                const bad = Array.from(new Set(part)).filter(function (ch) {
                    return FAT_FORBIDDEN.indexOf(ch) >= 0;
                }).sort();
                if (bad.length)
                    return "file name " + quote(name) + " contains " + repr(bad[0]) +
                        ", which a FAT long name cannot hold";
                if (part.endsWith(".") || part.endsWith(" "))
                    return "file name " + quote(name) + " has a component ending in '.' or ' ', which FAT drops";
                if (utf16Units(part) > LFN_MAX_UNITS)
                    return "file name " + quote(name) + " has a component over " + LFN_MAX_UNITS +
                        " characters, as a FAT long name allows";
            }
            if (utf16Units(name) + 1 > FAT_PATH_MAX_UNITS)
                return "file name " + quote(name) + " is longer than a FAT path may be (" +
                    FAT_PATH_MAX_UNITS + " characters)";
        }
        return null;
    }

    /* Messages for a whole list of names: each name's own, then clashes between names (a
     * floppy folds case). Returns an array parallel to names (null where a name passes). */
    function checkNames(names, type) {
        const folded = type === "floppy";
        const messages = names.map(function (name) { return checkName(name, type); });
        const files = new Map();
        const dirs = new Map();
        names.forEach(function (name, index) {
            if (messages[index] !== null)
                return;
            const key = folded ? name.toLowerCase() : name;
            const seen = files.get(key);
            if (seen !== undefined) {
                messages[index] = "file name " + quote(name) + " " +
                    (seen === name ? "duplicates " : "differs only in case from ") + quote(seen);
                return;
            }
            if (dirs.has(key)) {
                messages[index] = "file name " + quote(name) + " is also a directory of " + quote(dirs.get(key));
                return;
            }
            const parts = name.split("/");
            for (let depth = 1; depth < parts.length; depth++) {
                const dir = parts.slice(0, depth).join("/");
                const dirKey = folded ? dir.toLowerCase() : dir;
                if (files.has(dirKey)) {
                    messages[index] = "file name " + quote(files.get(dirKey)) + " is also a directory of " +
                        quote(name);
                    return;
                }
                if (!dirs.has(dirKey))
                    dirs.set(dirKey, name);
            }
            files.set(key, name);
        });
        return messages;
    }

    /* The command's message for a label ("" means the default, PAYLOAD), or null. */
    function checkLabel(label, type) {
        if (label === "")
            return null;
        if (CONTROL.test(label))
            return "volume_id " + quote(label) + " contains a control character";
        if (type === "cdrom") {
            if (label.length > ISO_LABEL_MAX)
                return "volume_id " + quote(label) + " is longer than " + ISO_LABEL_MAX +
                    " characters, as ISO 9660 allows";
            return null;
        }
        const upper = label.toUpperCase();
        if (!/^[\x00-\x7f]*$/.test(upper))
            return "volume_id " + quote(label) + " is not ASCII, as a FAT label must be";
        if (upper.length > FAT_LABEL_MAX)
            return "volume_id " + quote(label) + " is longer than " + FAT_LABEL_MAX + " characters, as FAT allows";
        const bad = Array.from(new Set(upper)).filter(function (ch) {
            return FAT_LABEL_FORBIDDEN.indexOf(ch) >= 0;
        }).sort();
        if (bad.length)
            return "volume_id " + quote(label) + " contains " + repr(bad[0]) + ", which a FAT label cannot hold";
        return null;
    }

    /* The floppy's capacity, counting the files' clusters only: a lower bound of what the
     * command counts (it adds the directories), so this never refuses what the command takes. */
    function checkCapacity(sizes, type) {
        if (type !== "floppy")
            return null;
        let clusters = 0;
        for (const size of sizes)
            clusters += Math.ceil(size / SECTOR);
        if (clusters > FLOPPY_CLUSTERS)
            return "floppy payload needs " + clusters * SECTOR + " bytes, over the " + FLOPPY_CLUSTERS * SECTOR +
                " a 1.44 MB floppy holds; use a cdrom payload";
        return null;
    }

    window.PayloadhookRules = {
        checkName: checkName,
        checkNames: checkNames,
        checkLabel: checkLabel,
        checkCapacity: checkCapacity,
        quote: quote,
    };
}());
