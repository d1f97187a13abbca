"""The network seed: a domain's network payload served over HTTP from 169.254.169.254 to
that domain only (``payloadhook serve``), and what the hook records for it.

The hook writes, through the store, two files per served domain into image_dir: at
``prepare`` the seed (record.py: the domain's UUID, its interfaces and its network
payload's files, sealed ones still sealed) and at ``started`` its taps (each interface's
tap device by name and interface index, as libvirt's live XML names them). ``release``
removes both, as it removes images. The service reads them per request: a domain is served
from its prepare to its release, and never through a tap other than its own.
"""

#: The seed service's lock, in image_dir: held (flock) for as long as the service runs, so
#: that the hook can tell, without a child process or libvirt, whether it is running.
LOCK_NAME = ".seed-service.lock"
#: Present (root's) in image_dir while the service cannot serve every bridge it should: from
#: before it takes its lock until it knows 169.254.169.254's port is its own, and while a
#: listener or its bridge rules could not be set up. The hook refuses prepare meanwhile.
FAILING_NAME = ".seed-service.failing"
UNIT = "payloadhook-seed"
#: The link-local address the seed is served from (OpenStack's and EC2's metadata address).
SEED_ADDRESS = "169.254.169.254"


def service_running(image_dir: str) -> bool:
    """Whether the seed service holds its lock in ``image_dir``."""
    import fcntl
    import os
    try:
        fd = os.open(f"{image_dir}/{LOCK_NAME}", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def service_failing(image_dir: str) -> bool:
    """Whether the seed service says it cannot serve (its marker is in ``image_dir``)."""
    import os
    try:
        os.lstat(f"{image_dir}/{FAILING_NAME}")
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True
