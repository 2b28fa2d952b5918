"""LLaVA-Med v1.5 (original format) + CLIP -> HF LLaVA, checked against the model built directly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, LlavaForConditionalGeneration

from networks import WeightsError
from networks.convert import main
from networks.llava import llava_config, random_llava
from tests.helpers.checkpoints import clip_vision_state, write_clip, write_llava_med, write_sentencepiece_tokenizer
from tests.helpers.configs import ROOT
from tests.helpers.tiny import tiny_parser


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A seeded tiny HF LLaVA whose vocabulary matches the sentencepiece tokenizer + <image>."""
    root = tmp_path_factory.mktemp("convert")
    tokenizer = AutoTokenizer.from_pretrained(write_sentencepiece_tokenizer(root / "tok"))
    vocab = len(tokenizer)
    parser = tiny_parser()
    text = {**parser.get_parsed_content("text_config"), "vocab_size": vocab + 1}
    torch.manual_seed(0)
    model = random_llava(llava_config(text, parser.get_parsed_content("vision_config"), image_token_id=vocab)).eval()
    with torch.no_grad():  # the source has no <image> row; the converter appends the mean row
        for weight in (model.model.language_model.embed_tokens.weight, model.lm_head.weight):
            weight[vocab] = weight[:vocab].mean(dim=0)
    return root, model, vocab


def _inputs(model, vocab):
    ids = torch.tensor([[1, 5, 9] + [vocab] * model.config.image_seq_length + [17, 23, 2]])
    pixels = torch.randn(1, 3, model.config.vision_config.image_size, model.config.vision_config.image_size)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": pixels}


def _assert_same_model(converted_dir, model, vocab):
    converted = LlavaForConditionalGeneration.from_pretrained(converted_dir, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(converted_dir)
    assert tokenizer.convert_tokens_to_ids("<image>") == vocab == converted.config.image_token_id
    assert tokenizer.pad_token is not None
    inputs = _inputs(model, vocab)
    with torch.no_grad():
        assert torch.allclose(model(**inputs).logits, converted(**inputs).logits, atol=1e-6)


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_conversion_gives_the_directly_built_model(reference, tmp_path, fmt):
    root, model, vocab = reference
    src = write_llava_med(tmp_path / "llava-med", model, vocab, fmt=fmt)
    clip = write_clip(tmp_path / "clip", model)
    assert main(["--llava-med", str(src), "--clip", str(clip), "--out", str(tmp_path / "hf")]) == 0
    _assert_same_model(tmp_path / "hf", model, vocab)
    # the converted directory is what the bundle's llava_path takes
    from networks.llava import load_llava

    load_llava(tmp_path / "hf")


def test_a_vision_tower_inside_the_llava_med_checkpoint_is_used(reference, tmp_path):
    root, model, vocab = reference
    src = write_llava_med(tmp_path / "llava-med", model, vocab, shards=1)
    shard = next(src.glob("*.safetensors"))
    state = load_file(shard)
    for name, tensor in clip_vision_state(model).items():
        state[f"model.vision_tower.vision_tower.vision_model.{name}"] = tensor.contiguous()
    save_file(state, shard, metadata={"format": "pt"})
    index = json.loads((src / "model.safetensors.index.json").read_text())
    index["weight_map"] = dict.fromkeys(state, shard.name)
    (src / "model.safetensors.index.json").write_text(json.dumps(index))
    clip = write_clip(tmp_path / "clip", model)
    for weights in clip.glob("*.safetensors"):
        weights.unlink()  # only its config is needed now
    assert main(["--llava-med", str(src), "--clip", str(clip), "--out", str(tmp_path / "hf")]) == 0
    _assert_same_model(tmp_path / "hf", model, vocab)


def test_help_runs():
    result = subprocess.run(
        [sys.executable, "-m", "networks.convert", "--help"],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        cwd=ROOT,
    )
    assert result.returncode == 0 and "--llava-med" in result.stdout and "--clip" in result.stdout


def test_an_unknown_tensor_is_named_and_nothing_is_written(reference, tmp_path, capsys):
    root, model, vocab = reference
    src = write_llava_med(tmp_path / "llava-med", model, vocab, shards=1)
    shard = next(src.glob("*.safetensors"))
    state = load_file(shard)
    state["model.mm_resampler.weight"] = torch.zeros(2)
    save_file(state, shard)
    out = tmp_path / "hf"
    assert main(["--llava-med", str(src), "--clip", str(write_clip(tmp_path / "clip", model)), "--out", str(out)]) == 1
    assert "model.mm_resampler.weight" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".hf*"))


def test_missing_clip_weights_are_reported(reference, tmp_path):
    root, model, vocab = reference
    src = write_llava_med(tmp_path / "llava-med", model, vocab)
    clip = write_clip(tmp_path / "clip", model)
    for weights in clip.glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(WeightsError, match="--clip"):
        from networks.convert import convert

        convert(src, clip, tmp_path / "hf", log=lambda *_: None)


def test_existing_output_is_not_clobbered(reference, tmp_path, capsys):
    root, model, vocab = reference
    out = tmp_path / "hf"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = [
        "--llava-med",
        str(write_llava_med(tmp_path / "src", model, vocab)),
        "--clip",
        str(write_clip(tmp_path / "clip", model)),
    ]
    assert main([*args, "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"
    assert main([*args, "--out", str(out), "--overwrite"]) == 0
    assert not (out / "keep.txt").exists()


def test_a_missing_shard_is_named(reference, tmp_path, capsys):
    root, model, vocab = reference
    src = write_llava_med(tmp_path / "llava-med", model, vocab)
    next(src.glob("model-00002-*")).unlink()
    assert (
        main(
            [
                "--llava-med",
                str(src),
                "--clip",
                str(write_clip(tmp_path / "clip", model)),
                "--out",
                str(tmp_path / "hf"),
            ]
        )
        == 1
    )
    assert "model-00002-of-00002.safetensors" in capsys.readouterr().err


def test_a_non_llava_med_source_is_rejected(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    write_sentencepiece_tokenizer(tmp_path / "src")
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "config.json").write_text("{}")
    assert (
        main(["--llava-med", str(tmp_path / "src"), "--clip", str(tmp_path / "clip"), "--out", str(tmp_path / "o")])
        == 1
    )
    assert "llava_mistral" in capsys.readouterr().err


class PickledCall:
    """A pickle that, if unpickled with full pickle, would create ``marker`` (stands for any code a file could run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.mark.parametrize("damage", ["garbage safetensors", "code in a .bin pickle", "wrong shape"])
def test_corrupt_hostile_or_mismatched_weights_are_named_and_nothing_is_written(reference, tmp_path, capsys, damage):
    root, model, vocab = reference
    src = write_llava_med(tmp_path / "llava-med", model, vocab, fmt="bin" if "bin" in damage else "safetensors")
    shard = next(src.glob("*-00001-of-00002.*"))
    marker = tmp_path / "executed"
    if damage == "garbage safetensors":
        shard.write_bytes(b"\x00" * 100)
    elif "bin" in damage:
        torch.save({"model.norm.weight": PickledCall(marker)}, shard)
    else:
        state = load_file(shard)
        name = next(iter(state))
        state[name] = torch.zeros(3, 5)
        save_file(state, shard, metadata={"format": "pt"})
    out, clip = tmp_path / "hf", write_clip(tmp_path / "clip", model)
    capsys.readouterr()  # writing the inputs prints progress bars
    assert main(["--llava-med", str(src), "--clip", str(clip), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and (str(shard) in err), err
    assert not marker.exists(), "nothing in a weight file is executed"
    assert not out.exists() and not list(tmp_path.glob(".hf*"))


def test_an_unwritable_output_folder_is_named_before_reading_weights(reference, tmp_path, capsys):
    root, model, vocab = reference
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    src, clip = write_llava_med(tmp_path / "src", model, vocab), write_clip(tmp_path / "clip", model)
    assert main(["--llava-med", str(src), "--clip", str(clip), "--out", str(blocker / "hf")]) == 1
    assert f"cannot write to output folder {blocker}" in capsys.readouterr().err
