"""The configured blobstore: the filesystem (the default) or S3, from `storage` in the config."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from blobstore import BlobStore, FilesystemBlobStore
from registry.config import Config, S3Config

if TYPE_CHECKING:
    from blobstore.s3 import S3BlobStore, S3Options


@contextlib.asynccontextmanager
async def open_blobstore(config: Config) -> AsyncIterator[BlobStore]:
    """The store `config.storage` selects, closed (its connections released) on exit."""
    store: FilesystemBlobStore | S3BlobStore
    if config.storage.driver != "s3":
        store = FilesystemBlobStore(config.blob_root, publish_helper=True)
    else:
        from blobstore.s3 import S3BlobStore  # aiobotocore only when S3 is configured

        store = S3BlobStore(s3_options(config.storage.s3))
    try:
        yield store
    finally:
        await store.close()


def s3_options(s3: S3Config) -> S3Options:
    from blobstore.s3 import S3Options

    endpoint = s3.regionendpoint or None
    if endpoint is not None and "://" not in endpoint:
        endpoint = ("https://" if s3.secure else "http://") + endpoint
    return S3Options(
        bucket=s3.bucket,
        region=s3.region,
        endpoint_url=endpoint,
        access_key=s3.accesskey,
        secret_key=s3.secretkey,
        root=s3.rootdirectory,
        path_style=s3.forcepathstyle,
        use_ssl=s3.secure,
        verify_tls=not s3.skipverify,
        v4_auth=s3.v4auth,
        chunk_size=s3.chunksize,
        storage_class=None if s3.storageclass.upper() == "NONE" else s3.storageclass,
    )
