"""OpenAI-style errors: every failure is a JSON body `{"error": {"message", "type", "param",
"code"}}` with a fitting status; a bad request is never a 500 and no answer holds a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from januspro.errors import InputError, JanusError

log = logging.getLogger(__name__)


class APIError(Exception):
    """An error answer. `param` names the request field at fault (dotted path)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(message: str, param: str | None = None, code: str | None = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def too_large(message: str, param: str | None = None) -> APIError:
    return APIError(413, message, param=param, code="too_large")


def queue_full(limit: int) -> APIError:
    return APIError(503, f"the server is busy: {limit} requests are already waiting; retry shortly",
                    type="server_error", code="queue_full", headers={"Retry-After": "1"})


def input_error(exc: InputError, param: str | None = None) -> APIError:
    """An engine InputError (over-long prompt, bad option, unreadable image) as a 400."""
    message = str(exc)
    code = "context_length_exceeded" if "context of" in message else "invalid_value"
    return bad_request(message, param, code)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("body",) and not str(part).startswith("function-"):
            out += f".{part}" if out else str(part)
    return out


def validation_error(exc: ValidationError | RequestValidationError) -> APIError:
    """The first problem pydantic found, phrased like OpenAI's errors."""
    from januspro.server.schemas import UnsupportedParameter

    problem = exc.errors()[0]
    param = _loc(tuple(problem.get("loc", ())))
    kind = problem.get("type", "")
    cause = (problem.get("ctx") or {}).get("error")
    if isinstance(cause, UnsupportedParameter):
        return bad_request(str(cause), cause.name, "unsupported_parameter")
    if kind == "extra_forbidden":
        return bad_request(f"Unrecognized request argument supplied: {param}", param, "unknown_parameter")
    if kind == "missing":
        return bad_request(f"Missing required parameter: '{param}'", param, "missing_required_parameter")
    message = str(problem.get("msg", "invalid value")).removeprefix("Value error, ")
    return bad_request(f"{param}: {message}" if param else message, param or None, "invalid_value")


def install_handlers(app: FastAPI) -> None:
    """Turn every exception a request can raise into an OpenAI-style JSON answer."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(exc).response()

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> JSONResponse:
        return input_error(exc).response()

    @app.exception_handler(JanusError)
    async def _janus(request: Request, exc: JanusError) -> JSONResponse:
        log.error("request failed: %s", exc)
        return APIError(500, str(exc), type="server_error", code="model_error").response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: f"no such endpoint: {request.method} {request.url.path}",
                    405: f"method {request.method} is not allowed on {request.url.path}"}
        message = messages.get(exc.status_code, str(exc.detail))
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return APIError(exc.status_code, message, code=code, headers=getattr(exc, "headers", None)).response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return APIError(500, "internal server error (see the server log)", type="server_error",
                        code="internal_error").response()
