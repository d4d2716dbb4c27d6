"""The `local` backend's engine: llama.cpp in-process (xllamacpp), serving a GGUF over HTTP.

The server speaks the OpenAI API, so the `local` backend reuses the `openai`
code path (langchain-openai) unchanged. One server per (model, context, slots)
lives for the whole process and stops at exit.

Throughput (docs/performance.md): ``n_parallel`` slots (``backend.max_concurrency``) decode together in
one batch, each slot with ``n_ctx`` tokens of its own. The prompt cache is on: a request goes to the idle
slot whose cached prompt shares the longest prefix with it, and prompts a slot gave up are kept in host
RAM and restored when a later request starts the same way. So the decision prompts, which all open with
one context block (shopper, product cards, prices, market), then the debate so far, then the role's own
instruction, are mostly read from the cache: each call of a decision repeats the previous one up to the end
of its transcript. No slot pinning (``id_slot``) is needed: the prefix decides.
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from malles_graph.errors import BackendError


@dataclass(frozen=True)
class LocalServerKey:
    model_path: str
    n_ctx: int
    n_parallel: int
    lora: str | None = None


class LocalServer:
    _servers: dict[LocalServerKey, LocalServer] = {}
    _lock = threading.Lock()

    def __init__(self, key: LocalServerKey, threads: int | None = None) -> None:
        import xllamacpp

        path = Path(key.model_path)
        if not path.exists():
            raise BackendError(f"local model file not found: {path} (run `malles data fetch model`)")
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = key.n_ctx * key.n_parallel  # llama.cpp splits the context among the slots
        params.n_parallel = key.n_parallel
        params.cache_prompt = True  # the default, stated: the prompt order is designed around it
        params.cache_ram_mib = CACHE_RAM_MIB
        params.endpoint_metrics = True  # /metrics: the server's own prompt and generation seconds (bench_llm)
        params.port = _free_port()
        params.cpuparams.n_threads = threads or default_threads()
        params.cpuparams_batch.n_threads = params.cpuparams.n_threads
        params.verbosity = -1
        if key.lora:
            params.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(key.lora, 1.0)]
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:
            raise BackendError(f"llama.cpp could not load {path}: {exc}") from exc
        self.key = key
        self.threads = params.cpuparams.n_threads
        self.base_url = f"http://127.0.0.1:{params.port}"

    @classmethod
    def get(cls, key: LocalServerKey, threads: int | None = None) -> LocalServer:
        """The process's server for ``key``, started on first use with ``threads`` compute threads (None: by the
        machine's load, :func:`compute_threads`; benchmarks pin one count so runs side by side compare)."""
        with cls._lock:
            if key not in cls._servers:
                cls._servers[key] = LocalServer(key, threads)
            return cls._servers[key]

    @classmethod
    def stop_all(cls) -> None:
        with cls._lock:
            for server in cls._servers.values():
                server._server = None
            cls._servers.clear()


# Host RAM for prompts evicted from the slots (llama.cpp's default is 8 GiB; the bundled model needs a
# few MB per thousand tokens, and a bound keeps a large user GGUF from taking the machine's memory).
CACHE_RAM_MIB = 1024


def default_threads() -> int:
    """The compute threads a server started now gets (:func:`compute_threads` of this machine)."""
    return compute_threads(_usable_cpus(), _load_average())


def compute_threads(cpus: int, load: float) -> int:
    """llama.cpp's compute threads: every usable CPU (up to 4) on a machine with room, one when it is busy.

    Each layer of a decode ends in a barrier of all compute threads, so when other processes already keep
    every CPU busy (1-minute load average >= CPUs) a thread waits a scheduler slice at each barrier: measured
    on 2 shared cores at load 7-10, 4 concurrent demo-sized calls took 41 s with one thread and over 5 min
    with two (docs/performance.md). On a quiet machine all threads are faster.
    """
    return 1 if load >= cpus else max(1, min(4, cpus))


def _load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on Unix
        return 0.0


def _usable_cpus() -> int:
    """CPUs this process may run on (a container's or taskset's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


atexit.register(LocalServer.stop_all)
