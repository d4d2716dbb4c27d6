"""Post-training a small causal LM on transactions: LoRA SFT (and DPO) with transformers + peft.

torch, transformers and peft are imported inside the functions (the ``align`` extra), so the
rest of malles-graph never needs them.

The base model is any local Hugging Face folder, or a GGUF file: the bundled SmolLM2-135M GGUF
is de-quantised by transformers (``gguf_file=``) once and cached as a HF folder under
``MALLES_HOME/models/<name>-hf`` (its ``quantization_config`` cleared, so it saves and reloads
as plain weights). That folder is also what llama.cpp's ``convert_lora_to_gguf.py`` reads as
``--base``, so the adapter trained on the de-quantised weights is written as a GGUF adapter and
served by llama.cpp on the *unchanged quantised* base (see :func:`export_adapter_gguf`).

Training: the loss is on the assistant answer tokens only (prompt tokens are masked), batches
are padded per batch, bf16 autocast on CPU when available (fp32 master weights), AdamW with a
linear warm-up/decay. Every ``save_every`` steps the adapter, optimiser and progress go to
``<output>/checkpoint``; a rerun with ``resume`` continues from there with the same data order.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from malles_graph.alignment.errors import AlignmentError
from malles_graph.paths import home, models_dir

CHECKPOINT = "checkpoint"
ADAPTER = "adapter"
STATE = "train_state.json"
LLAMA_CPP_SDIST = "llama-cpp-python==0.3.36"


class TrainConfig(BaseModel):
    """`malles align train` configuration (YAML/JSON file or CLI options)."""

    model_config = ConfigDict(extra="forbid")

    base: str = Field(default="bundled", description="'bundled' (SmolLM2 GGUF), a HF model folder or a GGUF file")
    examples: str = Field(description="export folder (sft.jsonl / dpo.jsonl) or a .jsonl file")
    output: str = Field(description="folder for the adapter, checkpoints and train_state.json")
    objective: Literal["sft", "dpo"] = "sft"
    lora_r: int = Field(default=16, ge=1, le=256)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    learning_rate: float = Field(default=2e-4, gt=0)
    warmup_steps: int = Field(default=5, ge=0)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, ge=1, description="stop after this many optimiser steps")
    batch_size: int = Field(default=4, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    max_length: int = Field(default=384, ge=32, description="tokens per example (longer ones are cut from the left)")
    lora_layers: int | None = Field(
        default=None, ge=1, description="adapt only the top N decoder layers (backward stops below them: faster)"
    )
    dpo_beta: float = Field(default=0.1, gt=0)
    save_every: int = Field(default=25, ge=1, description="checkpoint every N optimiser steps")
    seed: int = 0
    device: str = Field(  # checked here: torch's own refusal came after the base model had loaded, as a traceback
        default="auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$", description="auto | cpu | cuda | mps"
    )
    bf16: bool | None = Field(default=None, description="bf16 autocast; auto: on for CPU and bf16-capable GPUs")
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads (default: torch's)")
    limit: int | None = Field(default=None, ge=1, description="use only the first N examples")


@dataclass
class TrainResult:
    steps: int
    examples_seen: int
    tokens: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    resumed_from: int = 0
    adapter_dir: str = ""

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


StepCallback = Callable[[int, int, float, float], None]  # step, total steps, loss, tokens/s


# ---------------------------------------------------------------- base model
def gguf_to_hf(gguf: Path, out_dir: Path | None = None) -> Path:
    """De-quantise a GGUF into a Hugging Face folder once (cached); returns the folder."""
    gguf = Path(gguf)
    if not gguf.exists():
        raise AlignmentError(f"{gguf}: GGUF model not found")
    out = Path(out_dir) if out_dir else models_dir() / f"{gguf.stem}-hf"
    if (out / "config.json").exists() and any(out.glob("*.safetensors")):
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # the GGUF quantiser is only a loading path: drop it, or save/reload would look for a GGUF again
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config._name_or_path = str(out)
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out)
    return out


def resolve_base(base: str) -> Path:
    """A HF model folder for ``base`` ('bundled', a folder, or a GGUF file converted once)."""
    if base == "bundled":
        from malles_graph.data.assets import bundled_model_path

        return gguf_to_hf(bundled_model_path())
    path = Path(base)
    if path.suffix == ".gguf":
        return gguf_to_hf(path)
    if not (path / "config.json").exists():
        raise AlignmentError(f"{path}: not a Hugging Face model folder (no config.json) nor a .gguf file")
    return path


def pick_device(name: str) -> str:
    import torch

    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


# ---------------------------------------------------------------- data
def encode_sft(tokenizer, messages: list[dict[str, str]], max_length: int) -> tuple[list[int], list[int]]:
    """Token ids and labels (-100 on the prompt) of one chat example, with the model's template."""
    prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        raise AlignmentError("the chat template renders the prompt differently with and without the answer")
    # the answer ends at the end-of-turn token; what the template adds after it (a newline) is not learned
    end = tokenizer.eos_token or ""
    stop = full.find(end, len(prompt)) + len(end) if end and end in full[len(prompt) :] else len(full)
    ids = tokenizer(full[:stop], add_special_tokens=True)["input_ids"]
    n_prompt = len(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    labels = [-100] * n_prompt + ids[n_prompt:]
    if len(ids) > max_length:  # cut from the left: the answer must stay
        ids, labels = ids[-max_length:], labels[-max_length:]
    return ids, labels


def batch_tensors(encoded: list[tuple[list[int], list[int]]], pad_id: int):
    """Left-padded ids, labels, attention mask and position ids (every row ends at the same column)."""
    import torch

    width = max(len(e[0]) for e in encoded)
    ids = torch.tensor([[pad_id] * (width - len(e[0])) + e[0] for e in encoded])
    labels = torch.tensor([[-100] * (width - len(e[1])) + e[1] for e in encoded])
    mask = torch.tensor([[0] * (width - len(e[0])) + [1] * len(e[0]) for e in encoded])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, labels, mask, positions


def answer_span(labels) -> int:
    """Columns from the first labelled token to the end (left padding aligns the answers at the end)."""
    import torch

    labelled = (labels != -100).any(0)
    first = int(torch.nonzero(labelled)[0]) if labelled.any() else labels.shape[1] - 1
    return labels.shape[1] - first


def _load_data(cfg: TrainConfig, tokenizer) -> list:
    from malles_graph.alignment.export import read_examples, read_pairs

    if cfg.objective == "sft":
        examples = read_examples(cfg.examples)
        if cfg.limit:
            examples = examples[: cfg.limit]
        return [encode_sft(tokenizer, e.messages, cfg.max_length) for e in examples]
    pairs = read_pairs(cfg.examples)
    if cfg.limit:
        pairs = pairs[: cfg.limit]
    if not pairs:
        raise AlignmentError(f"{cfg.examples}: no preference pairs")
    return [
        (
            encode_sft(tokenizer, [*p.prompt, {"role": "assistant", "content": p.chosen}], cfg.max_length),
            encode_sft(tokenizer, [*p.prompt, {"role": "assistant", "content": p.rejected}], cfg.max_length),
        )
        for p in pairs
    ]


# ---------------------------------------------------------------- losses
def token_logprobs(model, batch):
    """Log-probabilities of the labelled tokens (0 elsewhere), computing logits only over the answers.

    The prompt's logits are never needed (its tokens are not learned), and the vocabulary
    projection is a fifth of a small model's compute: ``logits_to_keep`` skips it.
    """
    import torch

    ids, labels, mask, positions = (t.to(model.device) for t in batch)
    keep = answer_span(labels) + 1
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep).logits
    logits = logits[:, :-1].float()
    target = labels[:, -(keep - 1) :]
    valid = target != -100
    logp = torch.log_softmax(logits, dim=-1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return logp * valid, valid


def sequence_logprob(model, batch):
    """Sum of log-probabilities of the labelled tokens, per row."""
    logp, _ = token_logprobs(model, batch)
    return logp.sum(-1)


def sft_loss(model, encoded, pad_id: int):
    batch = batch_tensors(encoded, pad_id)
    logp, valid = token_logprobs(model, batch)
    return -logp.sum() / valid.sum().clamp(min=1), int(batch[2].sum())


def dpo_loss(model, encoded, pad_id: int, beta: float):
    import torch

    batch = batch_tensors([b[0] for b in encoded] + [b[1] for b in encoded], pad_id)
    pol = sequence_logprob(model, batch)
    with torch.no_grad(), model.disable_adapter():
        ref = sequence_logprob(model, batch)
    n = len(encoded)
    margin = (pol[:n] - ref[:n]) - (pol[n:] - ref[n:])
    return -torch.nn.functional.logsigmoid(beta * margin).mean(), int(batch[2].sum())


# ---------------------------------------------------------------- training loop
def load_for_training(cfg: TrainConfig):
    """(model with a trainable LoRA, tokenizer, base folder), resuming the adapter when a checkpoint exists."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = resolve_base(cfg.base)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    ckpt = Path(cfg.output) / CHECKPOINT
    if (ckpt / "adapter_config.json").exists():
        model = PeftModel.from_pretrained(model, str(ckpt), is_trainable=True)
    else:
        n_layers = model.config.num_hidden_layers
        layers = None
        if cfg.lora_layers is not None and cfg.lora_layers < n_layers:
            layers = list(range(n_layers - cfg.lora_layers, n_layers))
        lora = LoraConfig(
            layers_to_transform=layers,
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=cfg.target_modules,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    return model, tokenizer, base_dir


def train(cfg: TrainConfig, on_step: StepCallback | None = None, resume: bool = True) -> TrainResult:
    """Fine-tune a LoRA adapter; writes ``<output>/adapter`` and ``train_state.json``."""
    import random

    import numpy as np
    import torch

    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / CHECKPOINT
    if not resume and ckpt.exists():
        raise AlignmentError(f"{ckpt} exists: pass resume, or choose a new --output")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    device = pick_device(cfg.device)
    model, tokenizer, base_dir = load_for_training(cfg)
    model.to(device)
    data = _load_data(cfg, tokenizer)
    if not data:
        raise AlignmentError(f"{cfg.examples}: nothing to train on")
    per_epoch = math.ceil(len(data) / (cfg.batch_size * cfg.grad_accum))
    total = cfg.max_steps or max(1, math.ceil(per_epoch * cfg.epochs))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / max(1, cfg.warmup_steps)) * max(0.0, 1 - s / max(1, total)),
    )
    state = {"step": 0, "losses": [], "tokens": 0, "seconds": 0.0, "examples_seen": 0}
    if (ckpt / "state.json").exists():
        state = json.loads((ckpt / "state.json").read_text())
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
        scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=True))
    resumed_from = int(state["step"])
    bf16 = cfg.bf16 if cfg.bf16 is not None else (device == "cpu" or torch.cuda.is_bf16_supported())
    pad_id = tokenizer.pad_token_id

    def batches_for(step: int) -> list[list]:
        """The micro-batches of optimiser step ``step``: a seeded permutation per epoch (resumable)."""
        out_batches = []
        per_step = cfg.batch_size * cfg.grad_accum
        for micro in range(cfg.grad_accum):
            start = step * per_step + micro * cfg.batch_size
            epoch, offset = divmod(start, len(data))
            order = np.random.default_rng([cfg.seed, epoch]).permutation(len(data))
            idx = [order[(offset + j) % len(data)] for j in range(cfg.batch_size)]
            out_batches.append([data[int(i)] for i in idx])
        return out_batches

    model.train()
    started = time.perf_counter()
    tokens_this_run = 0
    while state["step"] < total:
        step = int(state["step"])
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for batch in batches_for(step):
            with torch.autocast(device_type="cuda" if device == "cuda" else "cpu", dtype=torch.bfloat16, enabled=bf16):
                if cfg.objective == "sft":
                    loss, n_tok = sft_loss(model, batch, pad_id)
                else:
                    loss, n_tok = dpo_loss(model, batch, pad_id, cfg.dpo_beta)
            (loss / cfg.grad_accum).backward()
            step_loss += float(loss.detach()) / cfg.grad_accum
            tokens_this_run += n_tok
            state["tokens"] += n_tok
            state["examples_seen"] += len(batch)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        state["step"] = step + 1
        state["losses"].append(round(step_loss, 5))
        elapsed = time.perf_counter() - started
        if on_step:
            on_step(state["step"], total, step_loss, tokens_this_run / elapsed if elapsed else 0.0)
        if state["step"] % cfg.save_every == 0 or state["step"] == total:
            state["seconds"] = state.get("seconds", 0.0) + elapsed
            started, tokens_this_run = time.perf_counter(), 0
            _save_checkpoint(model, optimizer, scheduler, state, ckpt)
    adapter_dir = out / ADAPTER
    model.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    result = TrainResult(
        steps=int(state["step"]),
        examples_seen=int(state["examples_seen"]),
        tokens=int(state["tokens"]),
        seconds=float(state["seconds"]),
        losses=list(state["losses"]),
        resumed_from=resumed_from,
        adapter_dir=str(adapter_dir),
    )
    (out / STATE).write_text(
        json.dumps(
            {
                "config": json.loads(cfg.model_dump_json()),
                "base_dir": str(base_dir),
                "device": device,
                "bf16": bf16,
                "n_data": len(data),
                **result.__dict__,
                "tokens_per_s": result.tokens_per_s,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return result


def _save_checkpoint(model, optimizer, scheduler, state: dict, ckpt: Path) -> None:
    import torch

    tmp = ckpt.with_name(ckpt.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(tmp))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    (tmp / "state.json").write_text(json.dumps(state), encoding="utf-8")
    if ckpt.exists():  # swap in the new checkpoint; an interrupted save leaves the old one usable
        old = ckpt.with_name(ckpt.name + ".old")
        ckpt.rename(old)
        tmp.rename(ckpt)
        import shutil

        shutil.rmtree(old)
    else:
        tmp.rename(ckpt)


def mean_answer_loss(model_dir: str | Path, examples: str | Path, base: str = "bundled", limit: int = 16) -> float:
    """Mean token loss on the answers of the first ``limit`` examples (adapter folder or base only)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from malles_graph.alignment.export import read_examples

    base_dir = resolve_base(base)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    if model_dir is not None and (Path(model_dir) / "adapter_config.json").exists():
        model = PeftModel.from_pretrained(model, str(model_dir))
    model.eval()
    data = [encode_sft(tokenizer, e.messages, 512) for e in read_examples(examples)[:limit]]
    with torch.no_grad():
        loss, _ = sft_loss(model, data, tokenizer.pad_token_id)
    return float(loss)


# ---------------------------------------------------------------- GGUF export (llama.cpp converters)
def converters_dir() -> Path:
    """llama.cpp's Python converters, from the llama-cpp-python sdist (pip download, no compiling)."""
    root = home() / "tools" / "llama.cpp"
    if (root / "convert_lora_to_gguf.py").exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="malles-llamacpp-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", tmp, LLAMA_CPP_SDIST]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise AlignmentError(f"could not download {LLAMA_CPP_SDIST} (llama.cpp converters): {done.stderr[-400:]}")
        sdist = next(Path(tmp).glob("*.tar.gz"))
        keep = ("convert_lora_to_gguf.py", "convert_hf_to_gguf.py", "conversion/", "gguf-py/")
        staging = Path(tmp) / "x"
        with tarfile.open(sdist) as tar:
            members = []
            for m in tar.getmembers():
                _, sep, rel = m.name.partition("/vendor/llama.cpp/")
                if sep and rel.startswith(keep) and (m.isfile() or m.isdir()):
                    m.name = rel
                    members.append(m)
            tar.extractall(staging, members=members, filter="data")
        try:
            staging.rename(root)
        except OSError:
            # Another process (a parallel test run, a second CLI) extracted them first: use theirs.
            if not (root / "convert_lora_to_gguf.py").exists():
                raise
    return root


def export_adapter_gguf(adapter_dir: str | Path, base_dir: str | Path, outfile: str | Path) -> Path:
    """Write a peft LoRA adapter as a GGUF adapter with llama.cpp's convert_lora_to_gguf.py."""
    tools = converters_dir()
    outfile = Path(outfile)
    outfile.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        str(tools / "convert_lora_to_gguf.py"),
        "--base",
        str(base_dir),
        "--outfile",
        str(outfile),
        "--outtype",
        "f32",
        str(adapter_dir),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0 or not outfile.exists():
        raise AlignmentError(f"convert_lora_to_gguf.py failed ({done.returncode}): {done.stderr[-800:]}")
    return outfile


def write_served(folder: str | Path, base_gguf: str | Path, lora_gguf: str | Path, prompt_format: str) -> Path:
    """The aligned-model folder manifest read by `likelihood:local` / `generate:local` (``--model FOLDER``)."""
    from malles_graph.alignment.predictors import ALIGNED_MANIFEST

    folder = Path(folder)
    lora = Path(lora_gguf)
    manifest = {
        "format": "malles-aligned/1",
        "model": str(Path(base_gguf).resolve()),
        "lora": lora.name if lora.parent.resolve() == folder.resolve() else str(lora.resolve()),
        "prompt_format": prompt_format,
    }
    path = folder / ALIGNED_MANIFEST
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path
