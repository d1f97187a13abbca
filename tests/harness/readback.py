"""Read images back with tools that share no code with payloadhook's ISO writer or with pyfatfs."""

from __future__ import annotations

import os
import subprocess
import tempfile

ENV = {**os.environ, "LC_ALL": "C.UTF-8"}


def _files_under(root: str) -> dict[str, bytes]:
    found = {}
    for dirpath, _, filenames in os.walk(root):
        for filename in filenames:
            path = os.path.join(dirpath, filename)
            with open(path, "rb") as stream:
                found[os.path.relpath(path, root)] = stream.read()
    return found


def iso_files(image: str, tree: str = "rock") -> dict[str, bytes]:
    """Every file of an ISO image, by path, as xorriso extracts it from one tree."""
    options = [] if tree == "rock" else ["-read_fs", "norock"]  # norock: load the Joliet tree
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(["xorriso", "-osirrox", "on", *options, "-indev", image, "-extract", "/", out + "/x"],
                       check=True, capture_output=True, env=ENV)
        return _files_under(out + "/x")


def fat_files(image: str) -> dict[str, bytes]:
    """Every file of a FAT image, by long name, as mtools copies it out."""
    listing = subprocess.run(["mdir", "-b", "-i", image, "::"], capture_output=True, text=True, env=ENV)
    if listing.returncode == 0 and not listing.stdout.strip():
        return {}
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(["mcopy", "-s", "-n", "-i", image, "::*", out + "/"], check=True, capture_output=True, env=ENV)
        return _files_under(out)


def fsck_fat(image: str) -> subprocess.CompletedProcess:
    return subprocess.run(["fsck.fat", "-n", image], capture_output=True, text=True, env=ENV)


def blkid(image: str) -> dict[str, str]:
    output = subprocess.run(["blkid", "-p", "-o", "export", image], check=True, capture_output=True, text=True,
                            env=ENV).stdout
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def isoinfo_joliet_names(image: str) -> list[str]:
    """isoinfo's listing of the Joliet tree (non-ASCII shown as '_' by isoinfo)."""
    output = subprocess.run(["isoinfo", "-J", "-f", "-i", image], check=True, capture_output=True, text=True,
                            env=ENV).stdout
    return output.split()


def pycdlib_files(image: str, tree: str = "rock") -> dict[str, bytes]:
    """Every file of an ISO image as pycdlib parses it (a strict reader: it checks path tables,
    extents and Rock Ridge entries on open), from the Rock Ridge, Joliet or plain ISO 9660 tree."""
    import io

    import pycdlib
    iso = pycdlib.PyCdlib()
    iso.open(image)
    try:
        key = {"rock": "rr_path", "joliet": "joliet_path", "iso9660": "iso_path"}[tree]
        found = {}
        for dirpath, _, filenames in iso.walk(**{key: "/"}):
            for filename in filenames:
                path = (dirpath.rstrip("/") + "/" + filename)
                out = io.BytesIO()
                iso.get_file_from_iso_fp(out, **{key: path})
                found[path.lstrip("/")] = out.getvalue()
        return found
    finally:
        iso.close()


def iso9660_files(image: str) -> dict[str, bytes]:
    """The plain ISO 9660 tree (level 1 names), as xorriso extracts it ignoring both extensions."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(["xorriso", "-osirrox", "on", "-read_fs", "ecma119", "-indev", image, "-extract", "/",
                        out + "/x"], check=True, capture_output=True, env=ENV)
        return _files_under(out + "/x")


def fat_root_entries(image: str) -> list[bytes]:
    """The raw 32-byte entries of a FAT12/16 root directory, up to its end marker, read by
    the boot sector's own numbers (long-name entries included: attribute 0x0F)."""
    import struct
    with open(image, "rb") as stream:
        data = stream.read()
    sector, _, reserved, fats, root_entries = struct.unpack_from("<HBHBH", data, 11)
    per_fat = struct.unpack_from("<H", data, 22)[0]
    start = (reserved + fats * per_fat) * sector
    entries = []
    for index in range(root_entries):
        entry = data[start + 32 * index:start + 32 * (index + 1)]
        if entry[0] == 0:
            break
        entries.append(entry)
    return entries


def isoinfo_names(image: str, tree: str = "iso9660") -> list[str]:
    """isoinfo's listing of paths in the plain ISO 9660 tree (level 1 names, ';1' kept) or,
    with tree='joliet', the Joliet tree."""
    options = ["-J"] if tree == "joliet" else []
    output = subprocess.run(["isoinfo", *options, "-f", "-i", image], check=True, capture_output=True,
                            env=ENV).stdout
    return output.decode("utf-8", "replace").splitlines()
