"""The memory estimate before a model is built: exact parameter counts, refused when it cannot fit."""

from __future__ import annotations

import pytest
import torch

from bundle.engines import SamEmbeddingCache
from common.errors import ConfigError
from networks.build import memory_need, model_token_ids, torch_dtype
from networks.config import MediSeeConfig, SamConfig
from networks.llava import llava_config
from networks.memory import GIB, check_fits, free_memory, free_ram
from networks.tokenizer import token_id
from tests.helpers.configs import config_files, config_list
from tests.helpers.processes import run_measured
from tests.helpers.tiny import build_tiny, tiny_parser

LAYERS_OF_A_HUGE_MODEL = 320
"""Ten times the 7B's layers: about 70 B parameters, more than any machine these tests run on holds."""
FULL_SIZE = config_list(config_files("inference.json", preset=None))
"""The model at its real size with the inference workflow."""


def tiny_need(dtype: str = "float32", loaded_llava: bool = False):
    parser = tiny_parser()
    tokenizer = parser.get_parsed_content("tokenizer")
    config = MediSeeConfig.from_dict(parser.get_parsed_content("medisee_config"))
    architecture = llava_config(
        parser.get_parsed_content("text_config"),
        parser.get_parsed_content("vision_config"),
        token_id(tokenizer, config.image_token),
    )
    ids, rejection = model_token_ids(tokenizer, config)
    sam = SamConfig.from_dict(parser.get_parsed_content("sam_config"))
    return memory_need(architecture, sam, config, len(tokenizer), ids, torch_dtype(dtype), loaded_llava, rejection)


def test_the_estimate_counts_exactly_the_parameters_of_the_built_model():
    model, _ = build_tiny()
    parameters = sum(p.numel() for p in model.parameters())
    need = tiny_need()
    assert need.parameters == parameters
    assert need.run_bytes == need.build_bytes == parameters * 4


def test_random_parts_are_counted_in_float32_while_they_are_built():
    random, loaded = tiny_need("bfloat16"), tiny_need("bfloat16", loaded_llava=True)
    assert random.run_bytes == loaded.run_bytes == random.parameters * 2
    assert random.build_bytes == random.parameters * 4  # built in float32, then cast
    assert random.run_bytes < loaded.build_bytes < random.build_bytes  # a loaded LLaVA arrives in bfloat16


def test_free_memory_is_read_and_more_than_that_is_refused():
    free = free_ram()
    assert free is not None and 0 < free <= free_memory("cpu") * 2
    check_fits(GIB // 1024, "cpu", "a small thing")
    with pytest.raises(ConfigError, match=r"^a huge thing needs about .* GiB and .* GiB of RAM are free"):
        check_fits(free * 2, "cpu", "a huge thing")


def test_a_sam_cache_larger_than_the_free_memory_is_refused_before_anything_is_cached():
    with pytest.raises(ConfigError, match=r"config 'sam_cache_gib'"):
        SamEmbeddingCache(max_gib=2 * free_ram() / GIB, device=torch.device("cpu"))
    assert SamEmbeddingCache(max_gib=0.01).bytes == 0


@pytest.mark.slow
def test_the_command_line_refuses_a_model_that_cannot_fit_in_one_line_without_allocating_it(tmp_path):
    out = tmp_path / "out"
    result = run_measured(
        [
            "-m", "monai.bundle", "run", "--config_file", FULL_SIZE, "--random_weights", "true",
            "--text_config#num_hidden_layers", str(LAYERS_OF_A_HUGE_MODEL), "--image", "demo/imagesTr/phantom_000.nii.gz",
            "--query", "Where is the liver?", "--output_dir", str(out),
        ]
    )  # fmt: skip
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert last.startswith("error: building the model (") and "GiB of RAM are free" in last
    assert result.peak_rss_gib < 3, "nothing beyond the estimate may have been allocated"
    assert not out.exists()
