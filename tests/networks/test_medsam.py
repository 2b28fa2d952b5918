"""MedSAM: the full preset is SAM ViT-B, and medsam_vit_b.pth-style files load strictly and safely."""

from __future__ import annotations

import pickle

import pytest
import torch

from networks import SamConfig, WeightsError
from networks.medsam import MedSAM, build_sam, load_medsam_state_dict
from networks.sam_import import import_sam_module
from tests.helpers.tiny import tiny_parser


@pytest.fixture(scope="module")
def tiny_sam_config():
    return SamConfig.from_dict(tiny_parser().get_parsed_content("sam_config"))


def test_full_preset_equals_segment_anything_vit_b():
    reference_builder = import_sam_module("build_sam").build_sam_vit_b
    full = SamConfig.from_dict(tiny_parser(**{"sam_config": None}).get("sam_config"))  # dataclass defaults
    with torch.device("meta"):
        ours = {k: v.shape for k, v in build_sam(full).state_dict().items()}
        reference = {k: v.shape for k, v in reference_builder().state_dict().items()}
    assert ours == reference


def test_full_preset_in_model_json_is_vit_b():
    from monai.bundle import ConfigParser

    from tests.helpers.configs import ROOT

    parser = ConfigParser()
    parser.read_config(str(ROOT / "configs" / "model.json"))
    assert SamConfig.from_dict(parser.get_parsed_content("sam_config")) == SamConfig()


def test_saved_state_dict_loads_to_identical_outputs(tmp_path, tiny_sam_config):
    torch.manual_seed(0)
    source = MedSAM(tiny_sam_config).eval()
    path = tmp_path / "medsam_vit_b.pth"
    torch.save(source.sam.state_dict(), path)
    torch.manual_seed(1)
    loaded = MedSAM(tiny_sam_config).eval()
    load_medsam_state_dict(loaded.sam, path)
    images = torch.rand(2, 3, tiny_sam_config.image_size, tiny_sam_config.image_size)
    assert torch.equal(source.encode_images(images), loaded.encode_images(images))


def test_missing_and_unexpected_keys_are_named(tmp_path, tiny_sam_config):
    sam = build_sam(tiny_sam_config)
    state = sam.state_dict()
    state.pop("mask_decoder.iou_token.weight")
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "medsam.pth"
    torch.save(state, path)
    with pytest.raises(
        WeightsError, match=r"missing keys: mask_decoder\.iou_token\.weight.*unexpected keys: extra\.weight"
    ):
        load_medsam_state_dict(sam, path)


def test_a_checkpoint_of_other_sizes_is_rejected_with_shapes(tmp_path, tiny_sam_config):
    other = SamConfig.from_dict({**vars(tiny_sam_config), "encoder_embed_dim": 48})
    path = tmp_path / "other.pth"
    torch.save(build_sam(other).state_dict(), path)
    with pytest.raises(WeightsError, match="mismatched shapes"):
        load_medsam_state_dict(build_sam(tiny_sam_config), path)


@pytest.mark.parametrize("content", [b"", b"not a torch file", None], ids=["empty", "garbage", "pickle"])
def test_unreadable_files_name_the_file_and_never_unpickle_code(tmp_path, tiny_sam_config, content):
    path = tmp_path / "medsam_vit_b.pth"
    if content is None:
        content = pickle.dumps(Exploit())  # weights_only=True must refuse to run this
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="medsam_vit_b.pth"):
        load_medsam_state_dict(build_sam(tiny_sam_config), path)
    assert not (tmp_path / "pwned").exists()


def test_a_missing_file_names_the_config_key(tmp_path, tiny_sam_config):
    with pytest.raises(WeightsError, match="medsam_path"):
        load_medsam_state_dict(build_sam(tiny_sam_config), tmp_path / "nope.pth")


class Exploit:
    def __reduce__(self):
        return (open, ("pwned", "w"))


def test_longest_side_resize_places_boxes_and_masks_consistently(tiny_sam_config):
    sam = MedSAM(SamConfig.from_dict({**vars(tiny_sam_config), "resize": "longest_side"}))
    side = sam.image_size
    scale = sam.input_frame_scale(torch.tensor([[50, 100], [100, 100]]))
    assert scale.tolist() == [[side, side / 2], [side, side]]
    masks = torch.zeros(1, side, side)
    masks[0, : side // 2, :] = 1.0  # the valid (unpadded) region of a 50x100 slice
    restored = sam.masks_to_original(masks, [[50, 100]])[0]
    assert restored.shape == (50, 100) and bool((restored == 1).all())
