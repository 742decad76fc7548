"""OpenAI's files and batches endpoints for :class:`tests.fake_llm_server.FakeLLMServer`.

The formats are OpenAI's (https://platform.openai.com/docs/api-reference/batch and
https://platform.openai.com/docs/api-reference/files), under any prefix (``/v1``, Azure's
``/openai``, ZhipuAI's ``/api/paas/v4``):

- ``POST .../files`` (multipart: ``file``, ``purpose=batch``), ``GET .../files/{id}/content``;
- ``POST .../batches`` ``{input_file_id, endpoint, completion_window}``, ``GET .../batches/{id}``,
  ``GET .../batches`` (the list), ``POST .../batches/{id}/cancel``.

A batch finishes at a poll: each of its lines is answered through the server's live behaviours
(:meth:`FakeLLMServer.next_behaviour`: ``answer``, ``answer_fn``, ``status``, ``usage``), so the
scripted answers of live tests work unchanged. :meth:`FakeBatchAPI.plan` sets how the next batches
go: ``{"polls": n}`` stays ``in_progress`` for ``n`` polls; ``{"expire_after": k}`` answers ``k``
lines and expires, the others in the error file as ``batch_expired``; ``{"fail": "message"}`` is
rejected (status ``failed``). A malformed input file (a line that is not a POST to the batch's
endpoint, a repeated ``custom_id``, a body without model or messages) fails the batch too.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

ENDPOINTS = ("/v1/chat/completions", "/chat/completions", "/v4/chat/completions")


class FakeBatchAPI:
    """Files and batches of one fake server; what was asked is kept for tests to read."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.plans: deque[dict[str, Any]] = deque()
        self.answered: list[tuple[str, str, dict]] = []  # (batch id, custom_id, body) per line
        self.calls: list[tuple[str, str, dict[str, str]]] = []  # (method, path, lowercase headers)
        self.lock = threading.Lock()
        self._ids = itertools.count(1)

    def plan(self, *plans: dict[str, Any]) -> FakeBatchAPI:
        """How the next batches go, one dict each (then the default: done at the first poll)."""
        with self.lock:
            self.plans.extend(plans)
        return self

    def lines(self, batch_id: str) -> list[dict[str, Any]]:
        """The input lines of a batch."""
        batch = self.batches[batch_id]
        return [json.loads(x) for x in self.files[batch["input_file_id"]]["data"].splitlines()]

    # -- routing ---------------------------------------------------------------------------------
    def route(self, handler: Any) -> bool:
        """Answer ``handler``'s request if it is for files or batches; False otherwise."""
        path = handler.path.split("?")[0].rstrip("/")
        method = handler.command
        routes = (
            ("POST", r".*/files", self._upload),
            ("GET", r".*/files/([^/]+)/content", self._content),
            ("POST", r".*/batches", self._create),
            ("GET", r".*/batches", self._list),
            ("GET", r".*/batches/([^/]+)", self._retrieve),
            ("POST", r".*/batches/([^/]+)/cancel", self._cancel),
        )
        for verb, pattern, action in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                length = int(handler.headers.get("Content-Length", 0))
                raw = handler.rfile.read(length) if length else b""
                with self.lock:
                    headers = {k.lower(): v for k, v in handler.headers.items()}
                    self.calls.append((method, path, headers))
                status, payload = action(handler, raw, *match.groups())
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                handler._send(status, data)
                return True
        return False

    # -- files -----------------------------------------------------------------------------------
    def _upload(self, handler: Any, raw: bytes) -> tuple[int, dict]:
        head = f"Content-Type: {handler.headers.get('Content-Type', '')}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + raw)
        fields: dict[str, Any] = {}
        filename = "upload.jsonl"
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[name] = part.get_payload(decode=True)
            if name == "file":
                filename = part.get_filename() or filename
        if fields.get("purpose") != b"batch" or "file" not in fields:
            return 400, _error("expected a multipart upload with file and purpose=batch")
        with self.lock:
            file_id = f"file-{next(self._ids)}"
            data = fields["file"].decode("utf-8")
            self.files[file_id] = {"data": data, "filename": filename, "purpose": "batch"}
        return 200, {
            "id": file_id, "object": "file", "bytes": len(fields["file"]),
            "created_at": int(time.time()), "filename": filename, "purpose": "batch",
            "status": "processed",
        }  # fmt: skip

    def _content(self, handler: Any, raw: bytes, file_id: str) -> tuple[int, Any]:
        file = self.files.get(file_id)
        if file is None:
            return 404, _error(f"no file {file_id}")
        return 200, file["data"].encode("utf-8")

    def _add_file(self, lines: list[dict]) -> str | None:
        if not lines:
            return None
        file_id = f"file-{next(self._ids)}"
        data = "".join(json.dumps(line) + "\n" for line in lines)
        self.files[file_id] = {"data": data, "filename": "out.jsonl", "purpose": "batch_output"}
        return file_id

    # -- batches ---------------------------------------------------------------------------------
    def _create(self, handler: Any, raw: bytes) -> tuple[int, dict]:
        request = json.loads(raw or b"{}")
        with self.lock:
            if request.get("input_file_id") not in self.files:
                return 400, _error("input_file_id: no such file")
            if (
                request.get("completion_window") != "24h"
                or request.get("endpoint") not in ENDPOINTS
            ):
                return 400, _error("expected completion_window 24h and a chat endpoint")
            plan = self.plans.popleft() if self.plans else {}
            batch_id = f"batch_{next(self._ids)}"
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": request["endpoint"],
                "input_file_id": request["input_file_id"], "completion_window": "24h",
                "status": "validating", "output_file_id": None, "error_file_id": None,
                "errors": None, "created_at": int(time.time()),
                "expires_at": int(time.time()) + 86400, "metadata": None,
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
                "_polls": plan.get("polls", 0), "_plan": plan,
            }  # fmt: skip
            return 200, _public(self.batches[batch_id])

    def _list(self, handler: Any, raw: bytes) -> tuple[int, dict]:
        with self.lock:
            data = [_public(b) for b in reversed(self.batches.values())]
        return 200, {"object": "list", "data": data, "has_more": False}

    def _retrieve(self, handler: Any, raw: bytes, batch_id: str) -> tuple[int, dict]:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return 404, _error(f"no batch {batch_id}")
            if batch["status"] in ("validating", "in_progress"):
                if batch["_polls"] > 0:
                    batch["_polls"] -= 1
                    batch["status"] = "in_progress"
                else:
                    self._finish(batch)
            return 200, _public(batch)

    def _cancel(self, handler: Any, raw: bytes, batch_id: str) -> tuple[int, dict]:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return 404, _error(f"no batch {batch_id}")
            batch["_plan"] = {"expire_after": 0, "code": "batch_cancelled"}
            self._finish(batch)
            return 200, _public(batch)

    def _finish(self, batch: dict[str, Any]) -> None:
        """Answer the batch's lines as its plan says (called with the lock held)."""
        plan = batch["_plan"]
        lines = [json.loads(x) for x in self.files[batch["input_file_id"]]["data"].splitlines()]
        problem = plan.get("fail") or _malformed(lines, batch["endpoint"])
        if problem:
            batch["status"] = "failed"
            batch["errors"] = {"object": "list", "data": [{"code": "invalid", "message": problem}]}
            return
        limit = plan.get("expire_after", len(lines))
        output, errors = [], []
        for number, line in enumerate(lines):
            item = {"id": f"batch_req_{number}", "custom_id": line["custom_id"]}
            if number >= limit:
                code = plan.get("code", "batch_expired")
                message = "This request could not be executed before the completion window expired."
                errors.append(
                    {**item, "response": None, "error": {"code": code, "message": message}}
                )
                continue
            status, body = self._answer(line["body"])
            self.answered.append((batch["id"], line["custom_id"], line["body"]))
            response = {"status_code": status, "request_id": f"req_{number}", "body": body}
            (output if status == 200 else errors).append(
                {**item, "response": response, "error": None}
            )
        batch["status"] = "completed" if limit >= len(lines) else plan.get("status", "expired")
        if plan.get("code") == "batch_cancelled":
            batch["status"] = "cancelled"
        batch["output_file_id"] = self._add_file(output)
        batch["error_file_id"] = self._add_file(errors)
        batch["request_counts"] = {
            "total": len(lines),
            "completed": len(output),
            "failed": len(errors),
        }

    def _answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One line answered as the live endpoint would answer ``body``."""
        from tests.fake_llm_server import completion_body

        behaviour = self.fake.next_behaviour()
        if "status" in behaviour:
            return behaviour["status"], _error(f"fake {behaviour['status']}")
        if any(behaviour.get(k) for k in ("malformed", "truncated", "drop")):
            return 500, _error("fake server error")
        answer = behaviour["answer_fn"](body) if "answer_fn" in behaviour else behaviour["answer"]
        extra = (
            {"finish_reason": behaviour["finish_reason"]} if "finish_reason" in behaviour else {}
        )
        usage = behaviour.get("usage") or self.fake.llamacpp.usage(body, answer)  # as live replies
        payload = completion_body(answer, body.get("model", "fake"), usage, **extra)
        return 200, json.loads(payload)


def _malformed(lines: list[dict[str, Any]], endpoint: str) -> str | None:
    """What is wrong with an input file, or None."""
    seen = set()
    for number, line in enumerate(lines, 1):
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or custom_id in seen:
            return f"line {number}: custom_id missing or repeated"
        seen.add(custom_id)
        if line.get("method") != "POST" or line.get("url") != endpoint:
            return f"line {number}: expected method POST and url {endpoint}"
        body = line.get("body")
        if not isinstance(body, dict) or not body.get("model") or not body.get("messages"):
            return f"line {number}: body needs model and messages"
    return None


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_")}


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error"}}
