"""Injection: files written into the file system of a shut-off domain's own disk, and taken
out again (``payloadhook inject``), for guests that read neither a medium nor the network.

libguestfs does every file-system operation, in its appliance (a small Linux VM run by QEMU),
as virt-customize does: the guest's file systems are never mounted on the host, and a guest
path is resolved inside the appliance, component by component, refusing a symbolic link
(:mod:`.guest`). The modules, one job each:

- :mod:`.paths`: the rule for a path in the guest (``--into``, names under it);
- :mod:`.record`: ``<pl:injected>``, what was written, in the domain's payload metadata;
- :mod:`.disks`: the domain's disks as libvirt describes them, and which one is written;
- :mod:`.guard`: the refusals before anything is opened (domain state, managed save, a disk
  in use by another domain or process);
- :mod:`.appliance`: launching libguestfs (KVM when it can run guests, else TCG; a bound on
  the launch);
- :mod:`.guest`: finding the target file system, writing files (temporary name, rename) and
  removing them when they still hold what was written.

Nothing here is imported by the hook.
"""

#: cloud-init's NoCloud local seed directory (DataSourceNoCloud's ``seed_dir``).
NOCLOUD_SEED = "/var/lib/cloud/seed/nocloud"
#: Where Windows looks for a sysprep answer file on its system volume (%WINDIR%\Panther), and
#: the name it looks for there.
PANTHER = "Panther"
UNATTEND = "unattend.xml"
