"""Request bodies: JSON read with a depth limit, refused in JSON words.

DRF's own ``JSONParser`` recurses once per nesting level, so a body nested some
thousands deep was a 500 (``RecursionError``). This one parses with
:func:`cluster.core.safejson.loads`, which also refuses over-long numbers and bytes that
are not text. Its size is Django's to check (DRF reads a JSON body through
``request.body``, which refuses more than ``DATA_UPLOAD_MAX_MEMORY_SIZE``): the API's
error handler answers that with :class:`BodyTooLarge`.
"""

from __future__ import annotations

from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser, get_encoding

from cluster.core import safejson


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"

    def __init__(self) -> None:
        super().__init__(f"the body is larger than {body_limit()} bytes")


def body_limit() -> int:
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


class SafeJSONParser(JSONParser):
    def parse(self, stream: IO[bytes] | None, media_type: str | None = None, parser_context: Any = None) -> Any:
        body = stream.read() if stream is not None else b""
        encoding = get_encoding(parser_context or {})
        try:
            text = body if encoding.lower().replace("-", "") == "utf8" else body.decode(encoding)
            return safejson.loads(text)
        except UnicodeDecodeError:
            raise exceptions.ParseError(f"the body is not {encoding} text") from None
        except safejson.JSONInputError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
