"""A domain UUID, one rule (payloadhook/uuids.py): what libvirt's virUUIDParse reads, written
as libvirt prints it; finding a domain, sealing and the store's records all go by it."""

import uuid

import pytest

from payloadhook.errors import SealError
from payloadhook.seal import blob
from payloadhook.store.book import is_uuid
from payloadhook.uuids import canonical_uuid, is_canonical_uuid

UUID = "0b7a1e2c-5d4f-4c3b-9a8e-7f6d5c4b3a21"


@pytest.mark.parametrize("text", [UUID, UUID.upper(), UUID.replace("-", ""), f"  {UUID}\n",
                                  "0b7a-1e2c5d4f-4c3b-9a8e-7f6d5c4b3a21", "0b 7a 1e 2c 5d 4f 4c 3b 9a 8e 7f 6d 5c 4b 3a 21"])
def test_what_libvirt_reads_as_a_uuid_is_one(text):
    assert canonical_uuid(text) == str(uuid.UUID(UUID)) == blob.canonical_uuid(text)


@pytest.mark.parametrize("text", ["", "not-a-uuid", "0b7a1e2c", UUID[:-1], UUID + "0", UUID + "g", "{" + UUID + "}",
                                  "0b7a1e2c-5d4f-4c3b-9a8e-7f6d5c4b3a21-", "0-b7a1e2c5d4f4c3b9a8e7f6d5c4b3a21", None, 7])
def test_anything_else_is_none(text):
    assert canonical_uuid(text) is None
    with pytest.raises(SealError, match="no valid <uuid>"):
        blob.canonical_uuid(text)


@pytest.mark.parametrize("text,canonical", [(UUID, True), (UUID.upper(), True), (UUID.replace("-", ""), False),
                                            (f" {UUID}", False), ("0b7a-1e2c5d4f-4c3b-9a8e-7f6d5c4b3a21", False)])
def test_a_record_holds_a_uuid_as_libvirt_prints_it(text, canonical):
    assert is_canonical_uuid(text) is canonical
    assert is_uuid(text) is canonical
