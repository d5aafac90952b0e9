"""Request body parsers that refuse bad input with a 400 instead of failing later.

* :class:`StrictMultiPartParser` refuses file names with path parts instead of silently trimming
  them: Django's own parser keeps only the last path component of an uploaded file's name; a
  client sending ``../../x.mp4`` should learn that its name was wrong.
* :class:`DepthLimitedJSONParser` refuses JSON nested deeper than
  ``engine.datasets.json_limits.MAX_JSON_DEPTH``: DRF's parser lets ``RecursionError`` escape
  (a 500) on ``[[[[...`` 100,000 deep.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles, JSONParser, MultiPartParser

from engine.datasets.json_limits import JsonTooDeep, check_json_depth
from engine.videos.ffmpeg import IngestError
from engine.videos.ingest import check_video_filename


class _StrictNameParser(DjangoMultiPartParser):
    def sanitize_file_name(self, file_name: str) -> str | None:
        try:
            check_video_filename(file_name)
        except IngestError as exc:
            raise MultiPartParserError(str(exc)) from None
        return super().sanitize_file_name(file_name)


class StrictMultiPartParser(MultiPartParser):
    def parse(
        self, stream: Any, media_type: Any = None, parser_context: Any = None
    ) -> DataAndFiles[Any, Any]:
        parser_context = parser_context or {}
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        length = int(meta.get("CONTENT_LENGTH") or 0)
        if length > settings.MAX_UPLOAD_BYTES + 1024 * 1024:
            raise ParseError(
                f"The upload is {length:,} bytes; the limit is {settings.MAX_UPLOAD_BYTES:,} bytes"
            )
        try:
            parser = _StrictNameParser(meta, stream, request.upload_handlers, "utf-8")
            data, files = parser.parse()
        except MultiPartParserError as exc:
            raise ParseError(str(exc)) from exc
        return DataAndFiles(data, files)


class DepthLimitedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
            check_json_depth(data)
        except (RecursionError, JsonTooDeep):
            raise ParseError("JSON parse error - the body nests too deeply") from None
        return data
