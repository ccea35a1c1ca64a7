"""Upload size limit enforced while the request body is read (not only in the form).

A file part larger than ``GALLERY_MAX_UPLOAD_BYTES`` is skipped as soon as the limit is crossed,
so it is never buffered in full; its name is recorded on ``request.gallery_oversize_uploads`` so
the view can answer with a per-file message.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile


class SizeLimitUploadHandler(FileUploadHandler):
    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self._received = 0
        if self.request is not None and not hasattr(self.request, "gallery_oversize_uploads"):
            self.request.gallery_oversize_uploads = []

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self._received += len(raw_data)
        if self._received > settings.GALLERY_MAX_UPLOAD_BYTES:
            if self.request is not None:
                self.request.gallery_oversize_uploads.append(self.file_name)
            raise SkipFile
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None
