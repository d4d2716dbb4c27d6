"""Training on a tiny Llama (real code path, real tokenizer): loss falls, resume works, GGUF round trip.

A 2-layer, 64-wide Llama with SmolLM2's tokenizer stands in for the 135M model so the test
runs in seconds; the same functions train the real model in `malles align train`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import peft  # noqa: F401 - the align extra must be installed (make test installs it)
import pytest
import torch
import transformers

from malles_graph.alignment.train import (
    TrainConfig,
    batch_tensors,
    converters_dir,
    encode_sft,
    export_adapter_gguf,
    train,
    write_served,
)

pytestmark = pytest.mark.slow

MESSAGES = [
    {"role": "system", "content": "Answer with JSON only."},
    {"role": "user", "content": "Options:\nA: $10\nB: $12\nWhich one?"},
    {"role": "assistant", "content": '{"product_id": "B", "quantity": 1}'},
]


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    """A tiny random Llama saved as a HF folder with the real SmolLM2 tokenizer."""
    from malles_graph.alignment.train import resolve_base

    real = resolve_base("bundled")  # the de-quantised bundled model folder (cached after the first run)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(real))
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
        initializer_range=0.5,  # large logits are reachable: a 0.02 init keeps a 64-wide model near uniform
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-base")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("examples")
    rows = []
    for i in range(8):
        msgs = [dict(m) for m in MESSAGES]
        msgs[1]["content"] += f" (trip {i})"
        rows.append(
            {
                "id": f"e{i}",
                "messages": msgs,
                "customer_id": "c",
                "date": "2001-01-05",
                "subclass": "s",
                "product_id": "p",
                "quantity": 1,
            }
        )
    (folder / "sft.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pair = {"id": "p0", "prompt": MESSAGES[:2], "chosen": MESSAGES[2]["content"],
            "rejected": '{"product_id": "A", "quantity": 1}', "subclass": "s"}
    (folder / "dpo.jsonl").write_text(json.dumps(pair) + "\n")
    return folder


def test_encoding_masks_the_prompt_and_keeps_the_answer(tiny_base: Path) -> None:
    tok = transformers.AutoTokenizer.from_pretrained(str(tiny_base))
    ids, labels = encode_sft(tok, MESSAGES, 512)
    learned = tok.decode([t for t, lab in zip(ids, labels, strict=True) if lab != -100])
    assert learned == '{"product_id": "B", "quantity": 1}<|im_end|>'
    prompt = tok.apply_chat_template(MESSAGES[:2], add_generation_prompt=True, tokenize=False)
    assert tok.decode(ids).startswith(prompt)
    short_ids, short_labels = encode_sft(tok, MESSAGES, 40)  # cut from the left: the answer survives
    assert len(short_ids) == 40 and sum(lab != -100 for lab in short_labels) == sum(lab != -100 for lab in labels)
    ids_t, labels_t, mask, pos = batch_tensors([(ids, labels), (short_ids, short_labels)], tok.pad_token_id or 0)
    assert ids_t.shape == labels_t.shape == mask.shape and int(mask[1].sum()) == 40
    assert int(pos[1, -1]) == 39 and int(pos[0, -1]) == len(ids) - 1


def test_tiny_training_reduces_loss_and_resumes(tiny_base: Path, examples: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(
        base=str(tiny_base), examples=str(examples), output=str(tmp_path / "run"), max_steps=6,
        batch_size=4, learning_rate=3e-2, warmup_steps=0, lora_r=8, save_every=3, lora_dropout=0.0,
    )
    seen: list[tuple[int, int]] = []
    first = train(cfg.model_copy(update={"max_steps": 3}), on_step=lambda s, t, loss, tps: seen.append((s, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert (tmp_path / "run" / "checkpoint" / "state.json").exists()
    resumed = train(cfg)  # continues from step 3 to 6 with the saved optimiser
    assert resumed.resumed_from == 3 and resumed.steps == 6 and len(resumed.losses) == 6
    assert resumed.losses[:3] == first.losses
    assert resumed.losses[-1] < resumed.losses[0] / 2, resumed.losses
    state = json.loads((tmp_path / "run" / "train_state.json").read_text())
    assert state["tokens"] > 0 and state["n_data"] == 8
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").exists()


def test_dpo_objective_runs(tiny_base: Path, examples: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(
        base=str(tiny_base), examples=str(examples), output=str(tmp_path / "dpo"), objective="dpo",
        max_steps=3, batch_size=1, learning_rate=5e-3, warmup_steps=0, lora_dropout=0.0,
    )
    result = train(cfg)
    assert result.losses[0] == pytest.approx(0.6931, abs=1e-3)  # log 2: policy equals the reference at start
    assert result.losses[-1] < result.losses[0]


def test_adapter_gguf_round_trip_in_llama_cpp(tiny_base: Path, examples: Path, tmp_path: Path) -> None:
    """peft adapter -> GGUF adapter (llama.cpp converter) -> loaded on a GGUF base -> answers."""
    tools = converters_dir()
    cfg = TrainConfig(base=str(tiny_base), examples=str(examples), output=str(tmp_path / "run"), max_steps=1,
                      batch_size=2, lora_r=4)
    result = train(cfg)
    base_gguf = tmp_path / "tiny-base.gguf"
    done = subprocess.run(
        [sys.executable, str(tools / "convert_hf_to_gguf.py"), str(tiny_base), "--outfile", str(base_gguf),
         "--outtype", "f32"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    adapter = export_adapter_gguf(result.adapter_dir, tiny_base, tmp_path / "run" / "adapter.gguf")
    assert adapter.stat().st_size > 0
    write_served(tmp_path / "run", base_gguf, adapter, "compact")

    from langchain_core.messages import HumanMessage

    from malles_graph.alignment.predictors import ServedModel
    from malles_graph.backends.registry import build_client
    from malles_graph.scenario import BackendConfig

    served = ServedModel.resolve(tmp_path / "run")
    assert served.lora == str(adapter) and served.model == str(base_gguf.resolve())
    client = build_client(
        BackendConfig(name="local", model=served.model, lora=served.lora, max_tokens=8, temperature=0.0, n_ctx=512),
        use_cache=False,
    )
    reply = client.chat([HumanMessage(content="hi")])
    assert reply.completion_tokens >= 1


def test_cli_training_tells_each_step_with_its_loss_when_piped(tiny_base, examples, tmp_path, capsys) -> None:
    from tests.cli.in_process import malles

    base = ["align", "train", "--base", str(tiny_base), "--examples", str(examples), "-o", str(tmp_path / "run")]
    done = malles(capsys, *base, "--max-steps", "3")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("training")]  # (transformers logs too)
    assert [line.split(" (")[0] for line in lines] == ["training: 1 of 3", "training: 2 of 3", "training: 3 of 3"]
    assert all(re.search(r"; loss \d+\.\d{4}  \d+ tok/s$", line) for line in lines), lines
    assert done.stdout.startswith("trained 3 steps")
    done = malles(capsys, *base, "--max-steps", "5")  # resumed: the count goes on from step 3
    assert done.returncode == 0, done.stderr
    lines = [line.split(" (")[0] for line in done.stderr.splitlines() if line.startswith("training")]
    assert lines == ["training: 4 of 5", "training: 5 of 5"]
