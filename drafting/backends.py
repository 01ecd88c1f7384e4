"""Calling the model: an OpenAI-compatible chat-completions server (httpx), or the demo backend.

Errors are sorted for the retry policy: ``RetryableModelError`` (timeouts, connection errors,
429, 5xx: the server may answer later) and ``PermanentModelError`` (4xx, a reply that is not a
chat completion: asking again would give the same answer).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from dataclasses import dataclass

import httpx

from .models import ModelEndpoint


@dataclass(frozen=True)
class ModelReply:
    text: str
    model: str
    latency_ms: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ModelError(Exception):
    retryable = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RetryableModelError(ModelError):
    retryable = True


class PermanentModelError(ModelError):
    pass


def call_model(endpoint: ModelEndpoint, *, prompt: str, png: bytes) -> ModelReply:
    """Ask ``endpoint`` for a report of the image ``png`` with ``prompt``."""
    if endpoint.backend == ModelEndpoint.Backend.DEMO:
        return demo_reply(prompt=prompt, png=png)
    return openai_reply(endpoint, prompt=prompt, png=png)


# --- OpenAI-compatible -------------------------------------------------------------------

_clients: dict[tuple[str, float], httpx.Client] = {}
_clients_lock = threading.Lock()


def _client(base_url: str, timeout: float) -> httpx.Client:
    """One pooled client per server and timeout in this process (keep-alive between drafts)."""
    key = (base_url, timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = httpx.Client(
                base_url=base_url.rstrip("/") + "/", timeout=timeout, trust_env=False
            )
        return client


def api_key(endpoint: ModelEndpoint) -> str | None:
    """The key from the environment variable the endpoint names (None when it names none)."""
    if not endpoint.api_key_env:
        return None
    key = os.environ.get(endpoint.api_key_env)
    if not key:
        raise PermanentModelError(
            f"The environment variable {endpoint.api_key_env} (the endpoint's API key) is not "
            "set in this worker's environment."
        )
    return key


def chat_request(endpoint: ModelEndpoint, *, prompt: str, png: bytes) -> dict:
    """The chat-completions request body: the prompt and the image as a base64 data URL."""
    data_url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return {
        "model": endpoint.model_name,
        "messages": [{
            "role": "user",
            "content": [
                {"type": "text", "text": prompt},
                {"type": "image_url", "image_url": {"url": data_url}},
            ],
        }],
        "max_tokens": endpoint.max_tokens,
        "temperature": endpoint.temperature,
    }


def openai_reply(endpoint: ModelEndpoint, *, prompt: str, png: bytes) -> ModelReply:
    headers = {}
    key = api_key(endpoint)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body = chat_request(endpoint, prompt=prompt, png=png)
    client = _client(endpoint.base_url, endpoint.timeout_s)
    started = time.perf_counter()
    try:
        response = client.post("chat/completions", json=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise RetryableModelError(
            f"No reply within {endpoint.timeout_s:g} s ({exc.__class__.__name__})."
        ) from exc
    except httpx.TransportError as exc:
        raise RetryableModelError(
            f"Cannot reach {endpoint.base_url}: {exc.__class__.__name__}: {exc}"
        ) from exc
    latency_ms = round((time.perf_counter() - started) * 1000)
    _raise_for_status(response)
    return _parse_completion(response, latency_ms=latency_ms)


def _snippet(response: httpx.Response, limit: int = 300) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:limit] + ("…" if len(text) > limit else "")


def _raise_for_status(response: httpx.Response) -> None:
    code = response.status_code
    if code < 400:
        return
    message = f"HTTP {code} from the model server: {_snippet(response)}"
    if code == 429 or code >= 500:
        raise RetryableModelError(message, retry_after=_retry_after(response))
    raise PermanentModelError(message)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _parse_completion(response: httpx.Response, *, latency_ms: int) -> ModelReply:
    try:
        data = response.json()
    except ValueError as exc:
        raise PermanentModelError(
            f"The model server's reply is not JSON: {_snippet(response)!r}"
        ) from exc
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise PermanentModelError(
            f"The reply is not a chat completion (no choices[0].message.content): "
            f"{_snippet(response)!r}"
        ) from exc
    if isinstance(content, list):  # some servers answer in content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise PermanentModelError(f"The reply's content is not text: {content!r:.200}")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return ModelReply(
        text=content,
        model=str(data.get("model") or ""),
        latency_ms=latency_ms,
        prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
        completion_tokens=_int_or_none(usage.get("completion_tokens")),
    )


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


# --- Demo --------------------------------------------------------------------------------

DEMO_MODEL = "demo-backend (not a model)"
_DEMO_FINDINGS = {
    "pneumonia": "Patchy airspace opacity in the right lower zone, consistent with "
                 "consolidation. No pleural effusion. Heart size normal.",
    "tuberculosis": "Nodular opacities with a small cavity in the right upper zone. "
                    "No pleural effusion. Heart size normal.",
    "cancer": "A rounded opacity about 3 cm in the left mid zone. No pleural effusion. "
              "Mediastinum not widened.",
    "effusion": "Blunting of the right costophrenic angle with a meniscus, in keeping with a "
                "small pleural effusion. Heart size normal.",
}
_DEMO_IMPRESSIONS = {
    "pneumonia": "Right lower zone consolidation, likely pneumonia.",
    "tuberculosis": "Right upper zone nodular opacities with cavitation; tuberculosis to be "
                    "excluded.",
    "cancer": "Left mid-zone mass; CT recommended.",
    "effusion": "Small right pleural effusion.",
}
_KEYWORDS = {
    "pneumonia": ("pneumonia", "fever", "cough", "sputum"),
    "tuberculosis": ("tuberculosis", "tb", "night sweats", "haemoptysis", "hemoptysis"),
    "cancer": ("cancer", "mass", "weight loss", "nodule", "smoker"),
    "effusion": ("effusion", "dyspnoea", "dyspnea", "breathless"),
}


def demo_reply(*, prompt: str, png: bytes) -> ModelReply:
    """An offline stand-in for a model: a plausible report chosen from the history's words.

    It never looks at the image beyond hashing it, and every draft it makes is stored with
    backend "demo" so the admin and the exports can say so.
    """
    words = prompt.lower()
    topic = next((t for t, keys in _KEYWORDS.items() if any(k in words for k in keys)), None)
    if topic is None:
        digest = hashlib.sha256(png).digest()[0]
        findings = ("The lungs are clear. No pleural effusion or pneumothorax. Heart size "
                    "normal." if digest % 3 else _DEMO_FINDINGS["pneumonia"])
        impression = "No acute cardiopulmonary abnormality." if digest % 3 else (
            _DEMO_IMPRESSIONS["pneumonia"])
    else:
        findings, impression = _DEMO_FINDINGS[topic], _DEMO_IMPRESSIONS[topic]
    return ModelReply(text=f"FINDINGS: {findings}\nIMPRESSION: {impression}",
                      model=DEMO_MODEL, latency_ms=0)
