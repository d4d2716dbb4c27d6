"""Likelihood choice scoring: the probability of each candidate as the model's answer.

Instead of sampling an answer, we read the model's next-token distribution after the answer
prefix (``{"product": "`` in the ``graph`` prompt format, ``{"product_id": "`` in ``compact``) and take, for each candidate's answer key (A, B, C...), the
probability of its tokens (chain rule over the key's tokens; one request when every key is a
single token, which is the case for letter labels). Normalised over the candidates, this is a
full probability vector per case, so hit@3, log-loss and calibration (ECE) apply to LLM
backends as they do to the choice model. The quantity is then read greedily after
``..., "quantity": `` for the most probable product. The prompt format must be the one the
model was trained in (``aligned.json`` records it; see ``predictors.ServedModel``).

The engine is llama.cpp's native HTTP server (``/apply-template``, ``/tokenize`` and
``/completion`` with ``n_probs``): the ``local`` backend's in-process server (optionally with a
LoRA adapter) or any llama.cpp server URL. ``n_probs`` returns the top-N log-probabilities of
the full (pre-sampling) distribution; a key outside the top N gets a floor below the smallest
returned value and is counted in ``ScoredChoice.floored``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from malles_graph.alignment.errors import AlignmentError
from malles_graph.alignment.prompting import ChoicePrompt, PromptStyle, choice_prompt
from malles_graph.errors import BackendError
from malles_graph.models import ChoiceSituation

FLOOR_GAP = 1.0  # nats below the smallest returned log-probability for keys outside the top N


def softmax_from_logprobs(logprobs: np.ndarray) -> np.ndarray:
    """Candidate probabilities from their (unnormalised) answer log-probabilities."""
    z = np.asarray(logprobs, dtype=float)
    e = np.exp(z - z.max())
    return e / e.sum()


@dataclass(frozen=True)
class ScoredChoice:
    """One situation scored: per-candidate log-probabilities (offered order) and the greedy quantity."""

    logprobs: np.ndarray
    probs: np.ndarray
    product_id: str
    quantity: int | None
    quantity_text: str
    floored: int  # candidate keys that were outside the returned top-N tokens
    mass: float  # total probability of the candidate keys before renormalising (how on-format the model is)


class LlamaCppScorer:
    """Scores choice prompts against a llama.cpp server."""

    def __init__(
        self,
        base_url: str,
        n_probs: int = 100,
        timeout_s: float = 120.0,
        prompt_format: str = "compact",
        style: PromptStyle | None = None,
    ):
        import httpx

        self.base_url = base_url.rstrip("/")
        self.n_probs = n_probs
        self.prompt_format = prompt_format  # the format the model was trained on (aligned.json / export manifest)
        self.style = style  # renders a non-compact format (else the registered one)
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s)
        self.requests = 0

    @classmethod
    def local(
        cls,
        model_path: str | Path | None = None,
        lora: str | Path | None = None,
        n_ctx: int = 2048,
        prompt_format: str = "compact",
        style: PromptStyle | None = None,
    ) -> LlamaCppScorer:
        """A scorer on the `local` backend's in-process llama.cpp server (same server key as the backend)."""
        from malles_graph.backends.local_server import LocalServer, LocalServerKey
        from malles_graph.data.assets import bundled_model_path

        path = str(model_path or bundled_model_path())
        server = LocalServer.get(LocalServerKey(path, n_ctx, 1, str(lora) if lora else None))
        scorer = cls(server.base_url, prompt_format=prompt_format, style=style)
        scorer.wait_ready()
        return scorer

    # ------------------------------------------------------------ server calls
    def _post(self, path: str, payload: dict) -> dict:
        import httpx

        try:
            reply = self._http.post(path, json=payload)
        except httpx.HTTPError as exc:
            raise BackendError(f"llama.cpp server {self.base_url}{path} failed: {exc}") from exc
        if reply.status_code != 200:
            raise BackendError(f"llama.cpp server {self.base_url}{path} answered {reply.status_code}: {reply.text[:300]}")
        self.requests += 1
        return reply.json()

    def wait_ready(self, seconds: float = 60.0) -> None:
        import time

        import httpx

        deadline = time.monotonic() + seconds
        while True:
            try:
                if self._http.get("/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise BackendError(f"llama.cpp server {self.base_url} not ready after {seconds:.0f}s")
            time.sleep(0.2)

    def template(self, prompt: ChoicePrompt) -> str:
        """The model's chat template applied to the messages, ending where the assistant answers."""
        return self._post("/apply-template", {"messages": prompt.chat()})["prompt"]

    def tokenize(self, text: str) -> list[int]:
        return self._post("/tokenize", {"content": text, "add_special": True})["tokens"]

    def next_token(self, tokens: list[int], n_predict: int = 1) -> dict:
        return self._post(
            "/completion",
            {
                "prompt": tokens,
                "n_predict": n_predict,
                "n_probs": self.n_probs,
                "temperature": 0.0,
                "cache_prompt": True,
            },
        )

    # ------------------------------------------------------------ scoring
    def key_logprobs(self, prefix_text: str, keys: list[str]) -> tuple[np.ndarray, int]:
        """Log-probability of each key's tokens following ``prefix_text`` (chain rule), and floored count."""
        base = self.tokenize(prefix_text)
        conts: list[tuple[list[int], list[int]]] = []
        for key in keys:
            toks = self.tokenize(prefix_text + key)
            n = 0
            while n < min(len(base), len(toks)) and base[n] == toks[n]:
                n += 1
            if n == len(toks):
                raise AlignmentError(f"answer key {key!r} adds no token to the prompt")
            conts.append((toks[:n], toks[n:]))
        cache: dict[tuple[int, ...], dict[int, float]] = {}
        out = np.zeros(len(keys))
        floored = 0
        for i, (ctx, cont) in enumerate(conts):
            total = 0.0
            for j, tok in enumerate(cont):
                key_ctx = tuple(ctx + cont[:j])
                if key_ctx not in cache:
                    cache[key_ctx] = _top_logprobs(self.next_token(list(key_ctx)))
                dist = cache[key_ctx]
                if tok in dist:
                    total += dist[tok]
                else:
                    total += min(dist.values()) - FLOOR_GAP
                    floored += 1
            out[i] = total
        return out, floored

    def score(self, situation: ChoiceSituation, quantity: bool = True) -> ScoredChoice:
        prompt = choice_prompt(situation, self.prompt_format, style=self.style)
        head = self.template(prompt)
        keys = list(prompt.keys)
        logprobs, floored = self.key_logprobs(head + prompt.product_prefix(), keys)
        probs = softmax_from_logprobs(logprobs)
        best = prompt.keys[keys[int(np.argmax(probs))]]
        qty, qtext = None, ""
        if quantity:
            reply = self.next_token(self.tokenize(head + prompt.quantity_prefix(best)), n_predict=4)
            qtext = reply.get("content", "")
            match = re.match(r"\s*(\d+)", qtext)
            qty = int(match.group(1)) if match and int(match.group(1)) >= 1 else None
        return ScoredChoice(
            logprobs=logprobs,
            probs=probs,
            product_id=best,
            quantity=qty,
            quantity_text=qtext,
            floored=floored,
            mass=float(np.exp(logprobs).sum()),
        )

    def close(self) -> None:
        self._http.close()


def _top_logprobs(reply: dict) -> dict[int, float]:
    probs = reply.get("completion_probabilities") or []
    if not probs:
        raise BackendError("llama.cpp returned no completion_probabilities (is n_probs supported by this server?)")
    first = probs[0]
    entries = first.get("top_logprobs") or first.get("probs") or []
    out: dict[int, float] = {}
    for e in entries:
        if "logprob" in e:
            out[int(e["id"])] = float(e["logprob"])
        elif "prob" in e and e["prob"] > 0:  # older servers report probabilities
            out[int(e["id"])] = math.log(e["prob"])
    if not out:
        raise BackendError("llama.cpp returned an empty top-token list")
    return out
