"""Calling the model: an OpenAI-compatible chat-completions server (httpx), or the demo backend.

Errors are sorted for the retry policy: ``RetryableModelError`` (timeouts, connection errors,
429, 5xx: the server may answer later) and ``PermanentModelError`` (4xx, a reply that is not a
chat completion: asking again would give the same answer).
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from trial import secrets
from trial.dicom.synthetic import ImageFinding

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


def api_key(endpoint: Any) -> str | None:
    """The key from the environment variable the endpoint (or tool) names (None when none)."""
    if not endpoint.api_key_env:
        return None
    if not secrets.allowed(endpoint.api_key_env):
        raise PermanentModelError(
            f"The environment variable {endpoint.api_key_env} may not hold a key "
            f"(only {secrets.PREFIX}... or SECRET_ENV_NAMES): nothing was sent.")
    key = secrets.read(endpoint.api_key_env)
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
    return post_chat(endpoint, chat_request(endpoint, prompt=prompt, png=png))


def text_request(tool: Any, messages: list[dict]) -> dict:
    """A text-only chat-completions body for a tool (a labeller, a judge): its model, its
    token limit and temperature."""
    return {"model": tool.model_name, "messages": messages, "max_tokens": tool.max_tokens,
            "temperature": tool.temperature}


def post_chat(tool: Any, body: dict) -> ModelReply:
    """POST ``body`` to the tool's ``chat/completions`` and read the reply; errors sorted for
    the retry policy. ``tool`` is a model endpoint or anything with its connection fields
    (``base_url``, ``api_key_env``, ``timeout_s``)."""
    headers = {}
    key = api_key(tool)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    client = _client(tool.base_url, tool.timeout_s)
    started = time.perf_counter()
    try:
        response = client.post("chat/completions", json=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise RetryableModelError(
            f"No reply within {tool.timeout_s:g} s ({exc.__class__.__name__})."
        ) from exc
    except httpx.TransportError as exc:
        raise RetryableModelError(
            f"Cannot reach {tool.base_url}: {exc.__class__.__name__}: {exc}"
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
#
# An offline stand-in for a model. For a demo case (its history written by ``demo.cases``)
# the draft follows the case's truth, the findings its synthetic image shows, with the small
# error rate of a real model; for any other case it is canned text chosen from the history's
# words, as it always was.
#
# A demo case's truth is a pure function of its history text, so the demo's builder (which
# draws the image from it), this backend (which sees only the prompt and the image) and the
# demo's simulation (which reads the case) all recover the same truth without sharing any
# store: the clinical question at the end of the history ("Clinical question: pneumothorax?")
# chooses the kind of findings, a side named in the history ("right-sided pleuritic pain")
# places them, and a hash of the whole history draws the rest (lobe, size, extra findings,
# and which findings the model misses or adds).

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

# The demo model's errors, as a real model's: now and then it misses a subtle finding (a
# small effusion or pneumothorax, a nodule, a rib fracture, atelectasis), never the obvious
# one the clinical question asks about (a cavity in a TB contact, a mass in a smoker with
# haemoptysis), and now and then it over-calls a minor finding, never another disease. A case
# gets one extra with DEMO_EXTRA_RATE.
DEMO_EXTRA_RATE = 0.05
DEMO_EXTRA_KINDS = ("atelectasis", "effusion", "nodule")


def subtle(f: ImageFinding) -> bool:
    """A finding easy to miss (for a model and a reader alike)."""
    return (f.kind in ("nodule", "fracture", "atelectasis", "pleural", "opacity")
            or (f.kind in ("effusion", "pneumothorax") and f.size in ("", "small")))


def demo_miss_rate(f: ImageFinding) -> float:
    """How often the demo model misses ``f``: 15% if subtle, never if obvious."""
    return 0.15 if subtle(f) else 0.0


@dataclass(frozen=True)
class DemoCase:
    """What a demo case's history implies: its truth and the demo model's draft of it."""

    age: int
    sex: str  # "M" or "F"
    question: str
    findings: tuple[ImageFinding, ...]  # the truth: what the image shows
    draft: tuple[ImageFinding, ...]  # what the demo model reports (truth +- its errors)
    missed: tuple[ImageFinding, ...]
    extra: tuple[ImageFinding, ...]
    key: int  # from the history's hash: seeds everything else about the case

    @property
    def normal(self) -> bool:
        return not self.findings


def _side(rng: np.random.Generator, told: str | None) -> str:
    return told or str(rng.choice(["right", "left"]))


def _lobe(rng: np.random.Generator, side: str, upper: bool) -> str:
    if upper:
        return "upper"
    middle = "middle" if side == "right" else "lingula"
    return str(rng.choice(["lower", "lower", middle]))


def _pneumonia(rng, side, upper):
    side = _side(rng, side)
    out = [ImageFinding("consolidation", side=side, lobe=_lobe(rng, side, upper))]
    if rng.random() < 0.25:
        out.append(ImageFinding("effusion", side=side, size="small"))
    return out


def _tuberculosis(rng, side, upper):
    side = "both" if rng.random() < 0.2 else _side(rng, side)
    out = [ImageFinding("tb", side=side, cavity=bool(rng.random() < 0.6))]
    if rng.random() < 0.15:
        out.append(ImageFinding("effusion", side=_side(rng, None) if side == "both" else side,
                                size="small"))
    return out


def _malignancy(rng, side, upper):
    side = _side(rng, side)
    zone = str(rng.choice(["upper", "upper", "mid", "lower"]))
    if rng.random() < 0.6:
        out = [ImageFinding("mass", side=side, zone=zone, cm=float(rng.integers(7, 13)) / 2)]
    else:
        out = [ImageFinding("nodule", side=side, zone=zone, cm=float(rng.integers(3, 6)) / 2)]
    if rng.random() < 0.2:
        out.append(ImageFinding("effusion", side=side, size="small"))
    return out


def _cardiac_failure(rng, side, upper):
    out = [ImageFinding("cardiomegaly")]
    if rng.random() < 0.65:
        out.append(ImageFinding("edema"))
    if rng.random() < 0.5:
        out.append(ImageFinding("effusion", side="both", size="small"))
    return out


def _pneumothorax(rng, side, upper):
    size = str(rng.choice(["small", "moderate", "moderate", "large"]))
    return [ImageFinding("pneumothorax", side=_side(rng, side), size=size)]


def _pleural_effusion(rng, side, upper):
    size = str(rng.choice(["moderate", "moderate", "large"]))
    return [ImageFinding("effusion", side=_side(rng, side), size=size)]


def _rib_fracture(rng, side, upper):
    if rng.random() < 0.3:
        return []  # no fracture seen
    side = _side(rng, side)
    out = [ImageFinding("fracture", side=side, rib=int(rng.integers(5, 10)))]
    if rng.random() < 0.2:
        out.append(ImageFinding("pneumothorax", side=side, size="small"))
    return out


def _line_position(rng, side, upper):
    return [ImageFinding("line")]


def _infection(rng, side, upper):
    if rng.random() < 0.4:
        return []
    side = _side(rng, side)
    return [ImageFinding("consolidation", side=side, lobe=_lobe(rng, side, upper))]


def _postoperative(rng, side, upper):
    roll = rng.random()
    if roll < 0.15:
        return []
    if roll < 0.75:
        return [ImageFinding("atelectasis", side=str(rng.choice(["right", "left", "both"])))]
    side = _side(rng, side)
    return [ImageFinding("consolidation", side=side, lobe="lower")]


def _normal(rng, side, upper):
    return []


# The clinical questions a demo history may end with: (what a consistent finding may be, how
# the truth is drawn). The first kind listed is what the question asks about. This is the
# mapping the demo's tests hold every case and every draft to.
DEMO_QUESTIONS: dict[str, tuple[tuple[str, ...], Any]] = {
    "pneumonia": (("consolidation", "effusion"), _pneumonia),
    "tuberculosis": (("tb", "effusion"), _tuberculosis),
    "malignancy": (("mass", "nodule", "effusion"), _malignancy),
    "cardiac failure": (("cardiomegaly", "edema", "effusion"), _cardiac_failure),
    "pneumothorax": (("pneumothorax",), _pneumothorax),
    "pleural effusion": (("effusion",), _pleural_effusion),
    "rib fracture or pneumothorax": (("fracture", "pneumothorax"), _rib_fracture),
    "line position": (("line",), _line_position),
    "infection": (("consolidation",), _infection),
    "atelectasis or infection": (("atelectasis", "consolidation"), _postoperative),
    "consolidation": (("consolidation",), _normal),
    "pre-operative baseline": ((), _normal),
}
_HISTORY = re.compile(r"^(?P<age>\d{1,2})-year-old (?P<sex>man|woman)\. .*\bClinical question: "
                      r"(?P<question>[^?.]+)[?.]\s*$", re.DOTALL)
_SIDE = re.compile(r"\b(right|left)\b", re.IGNORECASE)


def demo_case(history: str) -> DemoCase | None:
    """The truth and draft of the demo case whose history is ``history`` (None if it is not
    a demo history). Deterministic: the same text, the same case."""
    match = _HISTORY.match(history.strip())
    if match is None or match.group("question") not in DEMO_QUESTIONS:
        return None
    question = match.group("question")
    body = history[:history.rfind("Clinical question:")]
    side = _SIDE.search(body)
    upper = "upper zone" in body.lower()
    key = int.from_bytes(hashlib.sha256(history.strip().encode()).digest()[:8], "big")
    findings = tuple(DEMO_QUESTIONS[question][1](np.random.default_rng([key, 1]),
                                                 side.group(1).lower() if side else None, upper))
    errors = np.random.default_rng([key, 2])
    missed = tuple(f for f in findings if errors.random() < demo_miss_rate(f))
    extra: tuple[ImageFinding, ...] = ()
    if errors.random() < DEMO_EXTRA_RATE:
        kinds = [k for k in DEMO_EXTRA_KINDS if k not in {f.kind for f in findings}]
        if kinds:
            kind, side_x = str(errors.choice(kinds)), str(errors.choice(["right", "left"]))
            extra = (ImageFinding(kind, side=side_x, size="small", zone="lower", cm=1.0),)
    draft = tuple(f for f in findings if f not in missed) + extra
    return DemoCase(age=int(match.group("age")), sex="M" if match.group("sex") == "man" else "F",
                    question=question, findings=findings, draft=draft, missed=missed,
                    extra=extra, key=key)


def demo_case_in_prompt(prompt: str) -> DemoCase | None:
    """The demo case whose history is in ``prompt``: a line of it, after any "Label:"."""
    for line in prompt.splitlines():
        for candidate in (line, line.partition(":")[2]):
            case = demo_case(candidate.strip())
            if case is not None:
                return case
    return None


# --- Demo: the pool of phrasings ----------------------------------------------------------
#
# The demo model's drafts and the demo's simulated readers (both arms) write from this one
# pool, so no opening or house style tells a report's source. Each finding has several
# phrasings; normal statements are drawn for the structures the findings leave alone, in a
# random order; the order of a report is either abnormal-first or systematic.

LOBE_NAMES = {("right", "upper"): "right upper lobe", ("right", "middle"): "right middle lobe",
              ("right", "lower"): "right lower lobe", ("left", "upper"): "left upper lobe",
              ("left", "lingula"): "lingula", ("left", "lower"): "left lower lobe"}
_RIB = {4: "4th", 5: "5th", 6: "6th", 7: "7th", 8: "8th", 9: "9th", 10: "10th"}

# Findings sentences per kind ({side} {Side} {lobe} {Lobe} {zone} {size} {Size} {cm} {rib});
# "both" sides have their own.
FINDING_PHRASES: dict[str, tuple[str, ...]] = {
    "consolidation": ("Airspace consolidation in the {lobe}.",
                      "Patchy consolidation in the {lobe}{silhouette}.",
                      "There is consolidation of the {lobe}.",
                      "Patchy airspace opacification in the {side} {zone} zone, in keeping "
                      "with consolidation.",
                      "{Lobe} consolidation with air bronchograms."),
    "opacity": ("Patchy opacity in the {side} {zone} zone.",
                "Ill-defined opacity in the {side} {zone} zone."),
    "tb": ("Patchy and nodular opacities in the {side} upper zone{cavity_with}.",
           "{Side} upper zone consolidation{cavity_comma}.",
           "Ill-defined nodular shadowing in the {side} upper zone{cavity_comma}."),
    "tb_both": ("Patchy and nodular opacities in both upper zones{cavity_with}.",
                "Bilateral upper zone consolidation{cavity_comma}.",
                "Ill-defined nodular shadowing in both upper zones{cavity_comma}."),
    "nodule": ("A {cm} cm nodule in the {side} {zone} zone.",
               "{Side} {zone} zone nodule measuring about {cm} cm.",
               "Well-defined {cm} cm rounded opacity in the {side} {zone} zone."),
    "mass": ("A {cm} cm mass in the {side} {zone} zone.",
             "Lobulated {cm} cm mass projected over the {side} {zone} zone.",
             "{Side} {zone} zone mass, about {cm} cm, with irregular margins."),
    "effusion": ("{Size} {side} pleural effusion.",
                 "A {size} {side} pleural effusion with a meniscus.",
                 "{Side} pleural effusion, {size}."),
    "effusion_small": ("Blunting of the {side} costophrenic angle, in keeping with a small "
                       "effusion.",),
    "effusion_both": ("Small bilateral pleural effusions.",
                      "Blunting of both costophrenic angles, in keeping with small effusions."),
    "pneumothorax": ("{Size} {side} pneumothorax.",
                     "A {size} {side} pneumothorax, with a visible lung edge and no lung "
                     "markings beyond it.",
                     "{Side} pneumothorax, {size}, without mediastinal shift."),
    "cardiomegaly": ("The heart is enlarged.", "Cardiomegaly.", "Enlarged cardiac silhouette.",
                     "The cardiothoracic ratio is increased."),
    "edema": ("Perihilar haziness and septal lines, in keeping with interstitial oedema.",
              "Upper lobe venous diversion with Kerley B lines.",
              "Bilateral perihilar airspace shadowing, in keeping with pulmonary oedema."),
    "atelectasis": ("Linear atelectasis at the {side} base.",
                    "Plate-like atelectasis in the {side} lower zone.",
                    "Subsegmental atelectasis at the {side} base."),
    "atelectasis_both": ("Linear atelectasis at both bases.",
                         "Bibasal plate-like atelectasis."),
    "line": ("Right internal jugular central venous catheter, tip in the SVC.",
             "A right-sided central line with its tip projected over the SVC.",
             "Central venous catheter via the right internal jugular vein, tip at the level of "
             "the SVC."),
    "fracture": ("Fracture of the {side} {rib} rib laterally.",
                 "Minimally displaced fracture of the lateral {side} {rib} rib.",
                 "There is a {side} {rib} rib fracture."),
    "mediastinum": ("The superior mediastinum is widened with lobulated contours.",
                    "Widened mediastinum, in keeping with lymphadenopathy.",
                    "Lobulated mediastinal widening."),
    "pleural": ("Pleural thickening at the {side} apex.",
                "Apical pleural thickening on the {side}."),
}
IMPRESSION_PHRASES: dict[str, tuple[str, ...]] = {
    "consolidation": ("{Lobe} consolidation, in keeping with pneumonia.",
                      "Appearances in keeping with {lobe} pneumonia.",
                      "{Lobe} pneumonia.",
                      "Consolidation in the {lobe}, consistent with infection."),
    "opacity": ("{Side} {zone} zone opacity; infection is possible.",),
    "tb": ("{Side} upper zone {cavitating}consolidation, suspicious for active tuberculosis; "
           "sputum correlation advised.",
           "Appearances suggestive of active tuberculosis.",
           "{Side} upper zone changes in keeping with tuberculosis."),
    "tb_both": ("Bilateral upper zone {cavitating}consolidation, suspicious for active "
                "tuberculosis; sputum correlation advised.",
                "Appearances suggestive of active tuberculosis."),
    "nodule": ("{Side} {zone} zone nodule; CT chest recommended.",
               "{cm} cm pulmonary nodule in the {side} {zone} zone, for CT."),
    "mass": ("{Side} {zone} zone mass, suspicious for malignancy; CT chest recommended.",
             "Suspicious {side} {zone} zone mass; urgent CT advised."),
    "effusion": ("{Size} {side} pleural effusion.",),
    "effusion_both": ("Small bilateral pleural effusions.",),
    "pneumothorax": ("{Size} {side} pneumothorax.",
                     "{Side} pneumothorax, {size}; no tension."),
    "cardiomegaly": ("Cardiomegaly.", "Enlarged heart."),
    "edema": ("Pulmonary oedema.", "Interstitial pulmonary oedema."),
    "atelectasis": ("Minor {side} basal atelectasis.",),
    "atelectasis_both": ("Minor bibasal atelectasis.",),
    "line": ("Central line in satisfactory position.", "Satisfactory central line position."),
    "fracture": ("{Side} {rib} rib fracture.",),
    "mediastinum": ("Mediastinal widening, likely lymphadenopathy.",),
    "pleural": ("{Side} apical pleural thickening.",),
}
# Normal statements, per structure; a finding's structure is left unsaid as normal.
NORMAL_PHRASES: dict[str, tuple[str, ...]] = {
    "lungs": ("The lungs are clear.", "Clear lungs.", "No focal consolidation.",
              "The lung fields are clear.", "No consolidation or collapse."),
    "pleura": ("No pleural effusion.", "The costophrenic angles are clear.", "No effusion."),
    "pneumothorax": ("No pneumothorax.", "No pneumothorax is seen."),
    "heart": ("Heart size is normal.", "The heart is not enlarged.", "Normal cardiac size.",
              "Cardiothoracic ratio within normal limits."),
    "mediastinum": ("Normal mediastinal contours.", "The mediastinum is not widened.",
                    "Normal hila and mediastinum."),
    "bones": ("No acute bony abnormality.", "The visualised bones are intact.",
              "No displaced rib fracture."),
}
PLEURA_AND_PNEUMOTHORAX = "No pleural effusion or pneumothorax."
NORMAL_IMPRESSIONS = ("No acute cardiopulmonary abnormality.", "Normal chest radiograph.",
                      "No active disease.", "No acute abnormality.", "Normal appearances.")
# Which structure a finding occupies (no normal statement about it then).
STRUCTURE = {"consolidation": "lungs", "opacity": "lungs", "tb": "lungs", "nodule": "lungs",
             "mass": "lungs", "edema": "lungs", "atelectasis": "lungs", "effusion": "pleura",
             "pleural": "pleura", "pneumothorax": "pneumothorax", "cardiomegaly": "heart",
             "mediastinum": "mediastinum", "fracture": "bones", "line": ""}
# How likely a report mentions each structure it finds normal.
_MENTION = {"lungs": 0.9, "pleura": 0.85, "pneumothorax": 0.7, "heart": 0.85,
            "mediastinum": 0.45, "bones": 0.35}
_ORDERS = (("line", "lungs", "pleura", "pneumothorax", "heart", "mediastinum", "bones"),
           ("line", "heart", "mediastinum", "lungs", "pleura", "pneumothorax", "bones"))
# How serious each kind is: the impression leads with the most serious.
_WEIGHT = {"mass": 0, "pneumothorax": 1, "tb": 2, "consolidation": 3, "edema": 4,
           "cardiomegaly": 5, "nodule": 6, "effusion": 7, "fracture": 8, "mediastinum": 9,
           "opacity": 10, "atelectasis": 11, "pleural": 12, "line": 13}


def _variant(f: ImageFinding) -> str:
    if f.kind in ("tb", "atelectasis", "effusion") and f.side == "both":
        return f"{f.kind}_both"
    return f.kind


def _fill(template: str, f: ImageFinding) -> str:
    side = f.side if f.side in ("right", "left") else "right"
    lobe = LOBE_NAMES.get((side, f.lobe), f"{side} lower lobe")
    zone = f.zone or ("upper" if f.lobe == "upper" else "lower")
    silhouette = {"middle": ", obscuring the right heart border",
                  "lingula": ", obscuring the left heart border",
                  "lower": f", effacing the {side} hemidiaphragm"}.get(f.lobe, "")
    size = f.size or "small"
    cm = f"{f.cm:g}" if f.cm else "1"
    text = template.format(
        side=side, Side=side.capitalize(), lobe=lobe, Lobe=lobe[0].upper() + lobe[1:],
        zone=zone, size=size, Size=size.capitalize(), cm=cm, rib=_RIB.get(f.rib, "7th"),
        silhouette=silhouette, cavity_with=" with a thick-walled cavity" if f.cavity else "",
        cavity_comma=", with cavitation" if f.cavity else "",
        cavitating="cavitating " if f.cavity else "")
    return text[0].upper() + text[1:]


def finding_sentence(f: ImageFinding, rng: np.random.Generator) -> str:
    """One findings sentence about ``f``, a phrasing drawn from the pool."""
    variant = _variant(f)
    if variant == "effusion" and f.size == "small" and rng.random() < 0.4:
        variant = "effusion_small"
    options = FINDING_PHRASES[variant]
    return _fill(options[int(rng.integers(len(options)))], f)


def impression_sentence(f: ImageFinding, rng: np.random.Generator) -> str:
    options = IMPRESSION_PHRASES.get(_variant(f)) or IMPRESSION_PHRASES[f.kind]
    return _fill(options[int(rng.integers(len(options)))], f)


def normal_sentences(structures: set[str], rng: np.random.Generator) -> list[tuple[str, str]]:
    """(structure, sentence) for a random selection of the normal ``structures``."""
    chosen = [s for s in NORMAL_PHRASES if s in structures and rng.random() < _MENTION[s]]
    if "lungs" in structures and not chosen:
        chosen = ["lungs"]
    out = []
    if {"pleura", "pneumothorax"} <= set(chosen) and rng.random() < 0.5:
        chosen.remove("pneumothorax")
        out.append(("pleura", PLEURA_AND_PNEUMOTHORAX))
        chosen.remove("pleura")
    for structure in chosen:
        options = NORMAL_PHRASES[structure]
        out.append((structure, options[int(rng.integers(len(options)))]))
    return out


def order_sentences(abnormal: list[tuple[str, str]], normal: list[tuple[str, str]],
                    rng: np.random.Generator) -> list[str]:
    """A report's order: abnormal findings first (the normal statements shuffled after), or
    a systematic review (lungs first or heart first) with each finding in its place."""
    if rng.random() < 0.5:
        rng.shuffle(abnormal)
        rng.shuffle(normal)
        return [s for _, s in abnormal + normal]
    order = _ORDERS[int(rng.integers(len(_ORDERS)))]
    both = abnormal + normal
    rank = {s: i for i, s in enumerate(order)}
    jitter = rng.random(len(both))
    keyed = sorted(range(len(both)), key=lambda i: (rank.get(both[i][0], 0), jitter[i]))
    return [both[i][1] for i in keyed]


def write_report(findings: tuple[ImageFinding, ...] | list[ImageFinding],
                 rng: np.random.Generator) -> tuple[str, str]:
    """(findings, impression) describing ``findings``, phrased from the pool."""
    findings = list(findings)
    abnormal = [(STRUCTURE[f.kind] if f.kind != "line" else "line", finding_sentence(f, rng))
                for f in findings]
    free = set(NORMAL_PHRASES) - {STRUCTURE[f.kind] for f in findings}
    sentences = order_sentences(abnormal, normal_sentences(free, rng), rng)
    return " ".join(sentences), write_impression(findings, rng)


def write_impression(findings: list[ImageFinding], rng: np.random.Generator) -> str:
    if not findings:
        return NORMAL_IMPRESSIONS[int(rng.integers(len(NORMAL_IMPRESSIONS)))]
    ranked = sorted(findings, key=lambda f: (_WEIGHT[f.kind], rng.random()))
    return " ".join(impression_sentence(f, rng) for f in ranked)


_SLOTS = {
    "side": r"(?:right|left)", "zone": r"(?:upper|mid|lower)", "size": r"(?:small|moderate|large)",
    "cm": r"[0-9.]+", "rib": r"[0-9]+th", "silhouette": r"(?:, obscuring the (?:right|left) heart "
    r"border|, effacing the (?:right|left) hemidiaphragm)?",
    "cavity_with": r"(?: with a thick-walled cavity)?", "cavity_comma": r"(?:, with cavitation)?",
    "cavitating": r"(?:cavitating )?",
    "lobe": "(?:" + "|".join(sorted(LOBE_NAMES.values(), key=len, reverse=True)) + ")",
}


def _pattern(template: str) -> re.Pattern:
    """A template as a regex, the first side or lobe it names captured."""
    parts, named = [], set()
    for part in re.split(r"(\{\w+\})", template):
        if not part.startswith("{"):
            parts.append(re.escape(part))
            continue
        slot = part[1:-1].lower()
        body = _SLOTS[slot]
        if slot in ("side", "lobe") and slot not in named:
            named.add(slot)
            body = f"(?P<{slot}>{body})"
        parts.append(body)
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE)


_PATTERNS: list[tuple[re.Pattern, str, str]] = (
    [(_pattern(t), k.split("_")[0], "both" if k.endswith("_both") else "")
     for k, ts in FINDING_PHRASES.items() for t in ts]
)
_NORMAL_PATTERNS = {sentence: structure for structure, ts in NORMAL_PHRASES.items()
                    for sentence in ts}
_NORMAL_PATTERNS[PLEURA_AND_PNEUMOTHORAX] = "pleura+pneumothorax"


def classify_sentence(sentence: str) -> tuple[str, str, str] | None:
    """("finding", kind, side) or ("normal", structure, "") for a sentence of the pool (side
    is "right", "left", "both" or ""); None for a sentence the pool does not have."""
    sentence = sentence.strip()
    if sentence in _NORMAL_PATTERNS:
        return ("normal", _NORMAL_PATTERNS[sentence], "")
    for pattern, kind, both in _PATTERNS:
        match = pattern.match(sentence)
        if match:
            side = both or (match.groupdict().get("side") or "").lower()
            lobe = (match.groupdict().get("lobe") or "").lower()
            if not side and lobe:
                side = "left" if lobe in ("lingula",) or lobe.startswith("left") else "right"
            return ("finding", kind, side)
    return None


def split_sentences(text: str) -> list[str]:
    """Sentences of a report (a full stop followed by a space or a line break ends one)."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def demo_reply(*, prompt: str, png: bytes) -> ModelReply:
    """An offline stand-in for a model.

    For a demo case (``demo_case_in_prompt``) the draft describes the case's truth, with the
    demo model's errors; otherwise a plausible report chosen from the history's words. It
    never looks at the image beyond hashing it, and every draft it makes is stored with
    backend "demo" so the admin and the exports can say so.
    """
    case = demo_case_in_prompt(prompt)
    if case is not None:
        findings, impression = write_report(case.draft, np.random.default_rng([case.key, 3]))
        return ModelReply(text=f"FINDINGS: {findings}\nIMPRESSION: {impression}",
                          model=DEMO_MODEL, latency_ms=0)
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
