"""The hook's prepare pipeline, up to the images: what prepare builds for a domain, checked
as prepare checks it. The hook's ``prepare`` and ``payloadhook check DOMAIN | FILE.xml``
(which validates a domain's payloads without starting it) both run it.

The steps, in order, so that the first refusal is the hook's one line: the hook's reader,
the limits (config.check) before any decoding, decoding and the model's name rules,
binding, the store's path policy for each source, and (for ``check``) each image built
into /dev/null, one at a time, so that what only a builder can tell (an over-full floppy)
is told too. Sealed files are opened as at prepare (with this
host's keys). Nothing is written, nothing recorded.
"""

from __future__ import annotations

import os

from . import has_payload_metadata
from .config import check_sizes
from .domain.view import Binding, DomainView, read_domain
from .errors import BindingError, StoreError, shown
from .frozen import Frozen, assign

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .config import Config


class Checked(Frozen):
    """A payload that would be built at start: its binding and its image's size."""

    __slots__ = ("binding", "image_size")
    binding: Binding
    image_size: int

    def __init__(self, binding: Binding, image_size: int) -> None:
        assign(self, "binding", binding)
        assign(self, "image_size", image_size)


def bindings_to_build(view: DomainView, config: Config) -> tuple[Binding, ...]:
    """What prepare builds, checked as prepare checks it: the limits before any content is
    decoded, then each payload bound to its disk and held to the size limits, then its
    sealed files opened in memory (seal/opening.py). Shared by the hook and ``check``."""
    config.check(view.declared)
    bindings = view.bindings()
    for binding in bindings:    # again, now that content is decoded
        check_sizes(binding.payload, config.max_file_size, config.max_payload_size)
    _refuse_foreign_images(view, bindings, config.image_dir)
    if any(item.sealed is not None for binding in bindings for item in binding.payload.files):
        from .seal.opening import open_bindings
        bindings = open_bindings(bindings, view.uuid, config.key_dir)
    return bindings


def _refuse_foreign_images(view: DomainView, bindings: tuple[Binding, ...], image_dir: str) -> None:
    """A disk that receives no payload of this domain may not open a file in image_dir: the
    images there are other domains' (sealed ones opened), built for them alone. The source is
    compared as the kernel would resolve its directory ('..', doubled slashes, a link such as
    /var/run), not as written."""
    own = {binding.disk.target for binding in bindings}
    real_dir = os.path.realpath(image_dir)
    for disk in view.disks:
        if disk.target in own or not disk.source:
            continue
        parent = os.path.dirname(os.path.normpath(disk.source))
        if parent == image_dir or os.path.realpath(parent) == real_dir:
            raise BindingError(f"{disk.describe()} opens {shown(disk.source)}, in the image directory, but "
                               "receives no payload of this domain: images there belong to the domains "
                               "that declare them")


def check_domain(xml: bytes, config: Config, build: bool = True, service: bool = True) -> tuple[Checked, ...]:
    """Validate as prepare would; raise its PayloadhookError, or return what it would build
    (empty: no payload). ``build`` False skips building the images (sizes are then 0);
    ``service`` False leaves out whether the seed service runs now (an edit's check: the
    service must run at the start, not when the payload is attached)."""
    if not has_payload_metadata(xml):
        return ()
    view = read_domain(xml, editable=False)
    bindings = bindings_to_build(view, config)
    from .prepare_deviceless import deviceless_files
    from .store.images import ImageStore
    store = ImageStore(config.image_dir)
    names: set[str] = set()
    files = deviceless_files(view, config, service)
    for source in [b.source for b in bindings] + [item.source for item in files]:
        name = store.image_name(source)
        if name in names:
            raise StoreError("two payloads of the domain point at the same image file")
        names.add(name)
    extra = tuple(Checked(item, len(item.content)) for item in files)  # type: ignore[arg-type]
    if not build:
        return tuple(Checked(binding, 0) for binding in bindings) + extra
    from .media import write_image
    checked = []
    with open(os.devnull, "wb") as sink:
        for binding in bindings:
            checked.append(Checked(binding, write_image(binding.payload, sink)))
    return tuple(checked) + extra
