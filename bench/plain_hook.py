"""The comparison: a minimal qemu hook written the plain way, as peers write one.

stdlib XML and base64, the files written to a temporary directory, then the C tools:
``genisoimage -J -R -input-charset utf-8`` for a CD-ROM, ``mkfs.vfat -C`` plus ``mcopy``
for a floppy, and the image renamed into place. No validation, no records: the floor
that payloadhook's prepare is measured against.

Usage: python3 plain_hook.py DOMAIN prepare begin - < domain.xml
"""

import base64
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

PL = "{urn:payloadhook:payload:1}"


def main() -> int:
    if sys.argv[2:4] != ["prepare", "begin"]:
        return 0
    root = ET.fromstring(sys.stdin.buffer.read())
    disks = {d.find("target").get("dev"): d.find("source").get("file") for d in root.iter("disk")}
    for payload in root.iter(PL + "payload"):
        target = disks[payload.get("target")]
        label = payload.findtext(PL + "volume_id") or "PAYLOAD"
        with tempfile.TemporaryDirectory() as tree:
            names = []
            for item in payload.iter(PL + "file"):
                name = item.findtext(PL + "name")
                path = os.path.join(tree, name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as stream:
                    stream.write(base64.b64decode(item.findtext(PL + "content")))
                names.append(name)
            tmp = target + ".tmp"
            if payload.get("type") == "cdrom":
                subprocess.run(["genisoimage", "-quiet", "-J", "-R", "-input-charset", "utf-8", "-V", label,
                                "-o", tmp, tree], check=True)
            else:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                subprocess.run(["mkfs.vfat", "-C", "-n", label, tmp, "1440"], check=True, stdout=subprocess.DEVNULL)
                subprocess.run(["mcopy", "-i", tmp, "-s"] + [os.path.join(tree, n.split("/")[0]) for n in
                                                           sorted({n.split("/")[0] for n in names})] + ["::"],
                               check=True)
            os.rename(tmp, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
