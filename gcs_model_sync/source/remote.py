"""The bucket, over the GCS JSON API: what the rest of the code asks of it.

The source side, from the bottom: auth.py reaches the bucket (endpoint, credentials, one
session per process), access.py is one pass's use of it (counters, connection and bandwidth
budget, one retry budget per request), explain.py says what a failed request means,
listing.py lists the prefix, reads.py reads one object generation verified, and ranged.py
reads a big one as parallel ranges into a partial download (partials.py) that survives a
stopped pass.
"""

from __future__ import annotations

from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.source import listing, reads
from gcs_model_sync.source.access import Access
from gcs_model_sync.source.listing import Listing
from gcs_model_sync.source.reads import ObjectReader


class Bucket(Access):
    """Read-only access to one bucket: its listing and its objects."""

    def list_objects(self) -> Listing:
        """Every object under the prefix, one paginated listing (page token resumes on retry)."""
        return listing.list_objects(self)

    def open(self, obj: RemoteObject) -> ObjectReader:
        """A verified read of this object generation (see reads.ObjectReader)."""
        return ObjectReader(self, obj)

    def tail(self, obj: RemoteObject, start: int) -> bytes | None:
        """The object's bytes from `start` to its end (for a zip's central directory); None
        when that cannot be had: the caller does without."""
        return reads.tail(self, obj, start)
