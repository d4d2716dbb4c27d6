"""Secrets never leave the process: API keys and credential-like text are masked in every message we keep.

Used on backend error messages and answers (the client), on what the store writes (errors, transcript
turns), and on every error the CLI prints. Two nets: the exact values of registered secrets and of
credential-named environment variables (``*_API_KEY``, ``*_TOKEN``, ...), wherever they appear; and
patterns for credential-like text a server may echo (``Authorization: Bearer ...``, ``api_key=...``,
``sk-...``).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading

MASK = "<redacted>"
# Shorter values are too likely to be ordinary words ("local", "true") to mask everywhere.
MIN_SECRET_LEN = 6

_SECRET_ENV = re.compile(r"(API_?KEY|_KEY$|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
# Each pattern with the lowercase words one of which its match must contain: an ASCII text holding none of
# them (nearly every model answer) skips the regexes, which cost several times an instant model call.
_PATTERNS: list[tuple[tuple[str, ...], re.Pattern[str]]] = [
    # Authorization: Bearer xyz / Authorization=Basic xyz / "authorization": "xyz"
    (
        ("authorization",),
        re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?[^\s\"',;}]+"),
    ),
    (("bearer",), re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{6,}")),
    # api_key=..., "api-key": "...", x-api-key: ..., access_token=..., password: ...
    (
        ("key", "token", "secret", "passw"),
        re.compile(
            r"(?i)((?:x-)?(?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|secret[_-]?key|client[_-]?secret|"
            r"password|passwd|token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]+"
        ),
    ),
    # Provider key shapes: OpenAI (sk-..., sk-proj-...), Anthropic, GitHub, Hugging Face, Google.
    (
        ("sk-", "ghp_", "hf_", "aiza"),
        re.compile(r"\b()(?:sk-[A-Za-z0-9_-]{8,}|ghp_[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{20,}|AIza[A-Za-z0-9_-]{30,})"),
    ),
]

_registered: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears from now on (e.g. the API key a backend was built with)."""
    if value and len(value) >= MIN_SECRET_LEN:
        with _lock:
            _registered.add(value)


@functools.lru_cache(maxsize=16)
def _credential_names(names: tuple[bytes | str, ...]) -> tuple[str, ...]:
    # Cached per set of names: the environment is read on every redaction (a test or an app may set a key at
    # any time), but decoding and matching every name each time was most of an LLM call's own overhead.
    decoded = (os.fsdecode(name) for name in names)
    return tuple(name for name in decoded if _SECRET_ENV.search(name))


def _known_secrets() -> list[str]:
    # CPython keeps the environment undecoded in os.environ._data; only the values of the few credential-named
    # variables are decoded (os.environ decodes every name and value on iteration).
    names = _credential_names(tuple(getattr(os.environ, "_data", os.environ)))
    values = {v for name in names if len(v := os.environ.get(name, "")) >= MIN_SECRET_LEN}
    with _lock:
        values |= _registered
    # Longest first, so a secret containing another is masked whole.
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every known secret and credential-like value replaced by ``<redacted>``."""
    if not text:
        return text
    for secret in _known_secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    # Non-ASCII text runs every pattern: case-insensitive matching folds some non-ASCII letters to ASCII
    # ones (the Kelvin sign to k) that str.lower() keeps apart.
    lowered = text.lower() if text.isascii() else None
    for words, pattern in _PATTERNS:
        if lowered is not None and not any(word in lowered for word in words):
            continue
        text = pattern.sub(lambda m: (m.group(1) + MASK) if not m.group(0).endswith(MASK) else m.group(0), text)
    return text


def redact_optional(text: str | None) -> str | None:
    return None if text is None else redact(text)


def install_log_redaction() -> None:
    """Every log record's message passes through :func:`redact` (HTTP and LLM libraries log requests and errors)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacting", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
