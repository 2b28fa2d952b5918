"""Convert LLaVA-Med v1.5 (original ``llava_mistral`` format) + CLIP ViT-L/14-336 to an HF LLaVA directory.

    python -m networks.convert --llava-med SRC --clip CLIP_DIR --out DST

The result loads with ``LlavaForConditionalGeneration.from_pretrained(DST)`` and its tokenizer
holds ``<image>``. The HF model is built on the meta device and the source tensors are assigned
to it under their in-memory names (checked strictly against the model), so memory is about one
copy of the weights; ``save_pretrained`` then writes transformers' own on-disk format into a
temporary directory that is renamed onto DST only when everything succeeded.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, MistralConfig

from common.cli import DefaultsHelpFormatter
from common.errors import WeightsError, brief, list_names, run_command
from common.files import atomic_path, check_writable
from networks.tokenizer import load_tokenizer

IMAGE_TOKEN = "<image>"
MISTRAL_KEYS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta",
    "sliding_window", "attention_dropout", "initializer_range", "bos_token_id", "eos_token_id",
)  # fmt: skip
FEATURE_STRATEGY = {"patch": "default", "cls_patch": "full"}
# (source prefix, in-memory HF prefix); the vision tower is handled by ``tower_name``.
LLAVA_MED_KEYS = [
    ("model.embed_tokens.", "model.language_model.embed_tokens."),
    ("model.layers.", "model.language_model.layers."),
    ("model.norm.", "model.language_model.norm."),
    ("model.mm_projector.0.", "model.multi_modal_projector.linear_1."),
    ("model.mm_projector.2.", "model.multi_modal_projector.linear_2."),
    ("lm_head.", "lm_head."),
]
LLAVA_MED_TOWER = "model.vision_tower.vision_tower."  # some LLaVA checkpoints carry their CLIP tower
CLIP_VISION = "vision_model."
CLIP_DROPPED = ("text_model.", "visual_projection.", "text_projection.", "logit_scale")
HF_TOWER = "model.vision_tower."
BUFFERS = re.compile(r".*(rotary_emb\.inv_freq|position_ids)$")
RESIZED = ("model.language_model.embed_tokens.weight", "lm_head.weight")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def weight_files(directory: Path, what: str) -> list[Path]:
    """The weight files of a checkpoint directory (sharded with an index json, or single)."""
    for name in WEIGHT_INDEXES:
        index = directory / name
        if index.is_file():
            try:
                shards = dict.fromkeys(json.loads(index.read_text())["weight_map"].values())
            except (json.JSONDecodeError, KeyError) as exc:
                raise WeightsError(f"{what}: cannot read {index}: {exc}") from None
            missing = [s for s in shards if not (directory / s).is_file()]
            if missing:
                raise WeightsError(f"{what}: {index} names missing shards: {list_names(missing)}")
            return [directory / s for s in shards]
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return [directory / name]
    raise WeightsError(f"{what}: no weights in {directory} (expected {' or '.join(WEIGHT_INDEXES + WEIGHT_FILES)})")


def tensor_names(path: Path) -> list[str]:
    """Names of the tensors in one weight file (safetensors: from the header only)."""
    if path.suffix == ".safetensors":
        try:
            with safe_open(path, framework="pt", device="cpu") as handle:
                return list(handle.keys())
        except Exception as exc:
            raise WeightsError(f"cannot read weights {path}: {brief(exc)}") from None
    return [name for name, _ in read_tensors(path)]


def read_tensors(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """Yields the tensors of one safetensors or PyTorch (.bin) file, never unpickling code."""
    try:
        if path.suffix == ".safetensors":
            with safe_open(path, framework="pt", device="cpu") as handle:
                for name in handle.keys():
                    yield name, handle.get_tensor(name)
            return
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        raise WeightsError(f"cannot read weights {path}: {brief(exc)}") from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path} is not a state dict")
    yield from state.items()


def tower_name(clip_name: str, tower_keys: set[str]) -> str:
    """In-memory LLaVA name of a CLIP ``vision_model.*`` tensor.

    Whether the HF CLIP vision model keeps the ``vision_model.`` level in memory depends on the
    transformers version, so the name is matched against the model actually built.
    """
    name = clip_name if clip_name in tower_keys else clip_name[len(CLIP_VISION) :]
    return HF_TOWER + name


def source_name(name: str, tower_keys: set[str]) -> str | None:
    """In-memory HF name for a LLaVA-Med tensor, None for a dropped buffer, "" when unknown."""
    if BUFFERS.match(name):
        return None
    if name.startswith(LLAVA_MED_TOWER + CLIP_VISION):
        return tower_name(name[len(LLAVA_MED_TOWER) :], tower_keys)
    for source, target in LLAVA_MED_KEYS:
        if name.startswith(source):
            return target + name[len(source) :]
    return ""


def clip_name(name: str, tower_keys: set[str]) -> str | None:
    """In-memory HF name for a CLIP checkpoint tensor (text tower dropped), "" when unknown."""
    if BUFFERS.match(name) or name.startswith(CLIP_DROPPED):
        return None
    return tower_name(name, tower_keys) if name.startswith(CLIP_VISION) else ""


def llava_med_text_config(source: dict, path: Path) -> MistralConfig:
    """The Mistral config of a ``llava_mistral`` config.json."""
    if source.get("model_type") != "llava_mistral":
        raise WeightsError(
            f"{path}: model_type is {source.get('model_type')!r}, expected 'llava_mistral' (LLaVA-Med v1.5)"
        )
    if source.get("mm_projector_type", "mlp2x_gelu") != "mlp2x_gelu":
        raise WeightsError(
            f"{path}: mm_projector_type {source['mm_projector_type']!r} is not supported (mlp2x_gelu only)"
        )
    return MistralConfig(**{k: source[k] for k in MISTRAL_KEYS if k in source}, tie_word_embeddings=False)


def hf_config(source: dict, src_dir: Path, clip_dir: Path, image_token_id: int) -> LlavaConfig:
    """The HF LlavaConfig for the converted model."""
    text = llava_med_text_config(source, src_dir / "config.json")
    try:
        vision = CLIPVisionConfig.from_pretrained(clip_dir, local_files_only=True)
    except Exception as exc:
        raise WeightsError(f"--clip {clip_dir}: cannot read a CLIP config: {exc}") from None
    if source.get("mm_hidden_size", vision.hidden_size) != vision.hidden_size:
        raise WeightsError(
            f"--clip {clip_dir}: CLIP width {vision.hidden_size} differs from LLaVA-Med's "
            f"mm_hidden_size {source['mm_hidden_size']}"
        )
    strategy = source.get("mm_vision_select_feature", "patch")
    if strategy not in FEATURE_STRATEGY:
        raise WeightsError(f"{src_dir}: mm_vision_select_feature {strategy!r} is not supported")
    return LlavaConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=image_token_id,
        vision_feature_layer=source.get("mm_vision_select_layer", -2),
        vision_feature_select_strategy=FEATURE_STRATEGY[strategy],
        projector_hidden_act="gelu",
        multimodal_projector_bias=True,
        image_seq_length=(vision.image_size // vision.patch_size) ** 2,
        tie_word_embeddings=False,
    )


def grow_rows(tensor: torch.Tensor, rows: int) -> torch.Tensor:
    """Appends rows at the mean of the existing ones (new tokens start as an average token)."""
    extra = rows - tensor.shape[0]
    if extra <= 0:
        return tensor
    mean = tensor.float().mean(dim=0, keepdim=True).to(tensor.dtype)
    return torch.cat([tensor, mean.expand(extra, -1)], dim=0)


def convert(src: Path, clip: Path, out: Path, dtype: str | None = None, overwrite: bool = False, log=print) -> Path:
    """Converts LLaVA-Med v1.5 + CLIP into an HF-format LLaVA directory at ``out``.

    Args:
        src: the LLaVA-Med v1.5 directory (config.json, weight shards, tokenizer files).
        clip: the CLIP ViT-L/14-336 directory (config.json and weights).
        out: the directory to write.
        dtype: cast floating weights (``float16``, ``bfloat16``, ``float32``); None keeps them.
        overwrite: replace ``out`` if it exists.
        log: progress printer.
    """
    src, clip, out = Path(src), Path(clip), Path(out)
    for path, flag in ((src, "--llava-med"), (clip, "--clip")):
        if not (path / "config.json").is_file():
            raise WeightsError(f"{flag} {path}: no config.json there")
    if out.exists() and not overwrite:
        raise WeightsError(f"--out {out} exists; pass --overwrite to replace it")
    check_writable(out.parent, f"--out {out}")  # before minutes of reading shards
    cast = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, None: None}[dtype]
    try:
        source = json.loads((src / "config.json").read_text())
    except json.JSONDecodeError as exc:
        raise WeightsError(f"cannot parse {src / 'config.json'}: {exc}") from None

    tokenizer = load_tokenizer(src, "LLaVA-Med tokenizer")
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token
    config = hf_config(source, src, clip, tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
    config.text_config.vocab_size = max(config.text_config.vocab_size, len(tokenizer))
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    tower_keys = {k[len(HF_TOWER) :] for k in expected if k.startswith(HF_TOWER)}

    src_files = weight_files(src, "--llava-med")
    has_tower = any(n.startswith(LLAVA_MED_TOWER) for path in src_files for n in tensor_names(path))
    jobs = [(path, source_name) for path in src_files]
    if has_tower:
        log("the LLaVA-Med checkpoint holds its vision tower; CLIP weights are not needed")
    else:
        jobs += [(path, clip_name) for path in weight_files(clip, "--clip")]
    state: dict[str, torch.Tensor] = {}
    for number, (path, namer) in enumerate(jobs, start=1):
        log(f"[{number}/{len(jobs)}] reading {path}")
        for name, tensor in read_tensors(path):
            target = namer(name, tower_keys)
            if target == "" or (target and target not in expected):
                raise WeightsError(f"{path}: tensor {name} has no place in the HF LLaVA model")
            if target:
                state[target] = _prepared(tensor, target, expected[target], cast, path)
    missing = set(expected) - set(state)
    if missing:
        hint = " (vision tower: check --clip)" if any(m.startswith(HF_TOWER) for m in missing) else ""
        raise WeightsError(f"the converted model would miss weights{hint}: {list_names(missing)}")
    model.load_state_dict(state, strict=True, assign=True)
    del state
    with atomic_path(out, is_dir=True) as tmp:
        log(f"writing {out}")
        model.save_pretrained(tmp, max_shard_size="5GB")
        tokenizer.save_pretrained(tmp)
        if (src / "generation_config.json").is_file():
            shutil.copy(src / "generation_config.json", tmp / "generation_config.json")
    log(f"wrote {out}")
    return out


def _prepared(tensor: torch.Tensor, name: str, shape: torch.Size, cast: torch.dtype | None, path: Path) -> torch.Tensor:
    """Grows the vocabulary rows where needed, checks the shape and casts."""
    if name in RESIZED:
        tensor = grow_rows(tensor, shape[0])
    if tuple(tensor.shape) != tuple(shape):
        raise WeightsError(f"{path}: {name} has shape {tuple(tensor.shape)}, expected {tuple(shape)}")
    if cast is not None and tensor.is_floating_point():
        tensor = tensor.to(cast)
    return tensor


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        prog="python -m networks.convert",
        description="Convert LLaVA-Med v1.5 (llava_mistral) + CLIP ViT-L/14-336 into an HF LLaVA directory "
        "that LlavaForConditionalGeneration.from_pretrained loads (use it as the bundle's 'llava_path').",
    )
    parser.add_argument("--llava-med", required=True, type=Path, help="LLaVA-Med v1.5 Mistral-7B directory")
    parser.add_argument("--clip", required=True, type=Path, help="CLIP ViT-L/14-336 directory (config.json + weights)")
    parser.add_argument("--out", required=True, type=Path, help="output directory (HF format)")
    parser.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], help="cast weights (default: keep)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    return run_command(lambda: convert(args.llava_med, args.clip, args.out, args.dtype, args.overwrite), args.debug)


if __name__ == "__main__":
    sys.exit(main())
