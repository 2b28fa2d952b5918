"""The inference workflow's parts: input discovery, settings, the output rule, answer decoding, mask files and
overlay geometry."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from bundle.inference import (
    AnswerGenerator,
    OutputLayout,
    datalist,
    find_volumes,
    flag,
    image_intensity,
    require_volumes,
)  # fmt: skip
from bundle.inference.overlay import EMPTY_TILES, MAX_TILES, RADIOLOGICAL_VIEW, choose_tiles, display_box
from bundle.inference.writers import SaveMaskd
from bundle.prompts import PromptBuilder
from common.errors import ConfigError, DataError
from tests.helpers.volumes import write_nifti
from transforms.intensity import CTWindowd, MRNormalized

GZIP_MAGIC = b"\x1f\x8b"
GZIP_XFL = 8  # the header's extra-flags byte: 4 = fastest compression (level 1), 2 = best (level 9)
GZIP_FASTEST = 4


def touch(path):
    path.write_bytes(b"")
    return path


def test_volume_names_drop_the_nifti_suffix_and_folders_list_their_niftis(tmp_path):
    for name in ("b.nii.gz", "a.NII", "notes.txt", "._a.nii.gz"):
        touch(tmp_path / name)
    found = find_volumes(tmp_path)
    assert [(v.name, v.reader) for v in found] == [("a", "nibabel"), ("b", "nibabel")]
    assert find_volumes(tmp_path / "b.nii.gz")[0].name == "b"


def test_a_folder_without_niftis_is_one_dicom_series_named_after_it(tmp_path):
    series = tmp_path / "CT_001"
    series.mkdir()
    touch(series / "IM0001")
    assert [(v.name, v.reader) for v in find_volumes(series)] == [("CT_001", "itk")]


@pytest.mark.parametrize(
    "files, message",
    [((), "holds no NIfTI files"), (("a.nii", "a.nii.gz"), "a.nii and a.nii.gz would both write outputs named 'a'")],
    ids=["empty", "same name"],
)
def test_folders_that_cannot_be_read_as_volumes_are_named(tmp_path, files, message):
    for name in files:
        touch(tmp_path / name)
    with pytest.raises(DataError, match=message) as raised:
        find_volumes(tmp_path)
    assert str(tmp_path) in str(raised.value)


def test_a_missing_image_is_named(tmp_path):
    with pytest.raises(DataError, match=f"image not found: {tmp_path / 'x.nii.gz'}"):
        datalist(tmp_path / "x.nii.gz", "Where is the liver?")


def test_without_an_image_the_datalist_is_empty_and_running_is_refused():
    assert datalist(None, None) == []
    with pytest.raises(ConfigError, match="config 'image' is not set"):
        require_volumes([])


def test_the_query_travels_in_each_entry_and_command_line_splits_are_joined(tmp_path):
    write_nifti(tmp_path / "a.nii.gz", np.zeros((4, 4, 2), np.int16), np.eye(4))
    assert datalist(tmp_path, ("liver", "spleen"))[0]["query"] == "liver, spleen"  # fire splits unquoted commas
    for bad in (None, "  ", ["SEG"]):
        with pytest.raises(ConfigError, match="config 'query'"):
            datalist(tmp_path, bad)


def test_flags_accept_command_line_words():
    assert [flag(v, "x") for v in (True, "true", "False", "yes", "0")] == [True, True, False, True, False]
    with pytest.raises(ConfigError, match="config 'overwrite' must be true or false"):
        flag("maybe", "overwrite")


def test_intensity_is_explicit_bounds_a_preset_or_mr():
    assert isinstance(image_intensity("mr"), MRNormalized)
    window = image_intensity("abdomen", a_min=-100.0, a_max=200.0)
    assert isinstance(window, CTWindowd) and (window.scaler.a_min, window.scaler.a_max) == (-100.0, 200.0)
    with pytest.raises(ConfigError):
        image_intensity("abdomen", a_min=-100.0)


def test_existing_outputs_are_named_unless_overwrite(tmp_path):
    entries = [{"name": "a"}, {"name": "b"}]
    touch(tmp_path / "b_result.json")
    with pytest.raises(DataError, match="b_result.json"):
        OutputLayout(tmp_path).check_free(entries)
    with pytest.raises(DataError, match="b_result.json"):
        OutputLayout(tmp_path).claim("b", "result")
    OutputLayout(tmp_path, overwrite="true").check_free(entries)


def test_answers_stop_at_the_end_token_and_keep_the_candidate_tokens(tiny):
    model, tokenizer = tiny
    generator = AnswerGenerator(PromptBuilder.for_model(tokenizer, model))
    ids = tokenizer(" It is [SEG] and [BBOX].", add_special_tokens=False).input_ids
    noise = tokenizer("ignored", add_special_tokens=False).input_ids
    assert generator.decode([tokenizer.pad_token_id, *ids, tokenizer.eos_token_id, *noise]) == "It is [SEG] and [BBOX]."


def test_a_static_answer_cache_generates_the_same_answer_as_the_dynamic_one(tiny):
    model, tokenizer = tiny
    prompts = PromptBuilder.for_model(tokenizer, model)
    image = torch.rand(1, 40, 48, generator=torch.Generator().manual_seed(0))
    tokens = 12
    dynamic = AnswerGenerator(prompts, tokens)(model, image, "Where is the liver?")
    static = AnswerGenerator(prompts, tokens, cache="static")(model, image, "Where is the liver?")
    assert dynamic and static == dynamic
    with pytest.raises(ConfigError, match="answer_cache"):
        AnswerGenerator(prompts, tokens, cache="paged")


def test_masks_are_gzipped_at_the_fast_level_and_read_back_exactly(tmp_path):
    generator = torch.Generator().manual_seed(0)
    mask = MetaTensor(
        (torch.rand(1, 30, 20, 10, generator=generator) < 0.02).to(torch.uint8),
        affine=torch.diag(torch.tensor([0.8, 1.2, 2.5, 1.0])),
    )
    SaveMaskd(OutputLayout(tmp_path)).write(tmp_path / "m_mask.nii.gz", mask, {})
    raw = (tmp_path / "m_mask.nii.gz").read_bytes()
    assert raw[:2] == GZIP_MAGIC and raw[GZIP_XFL] == GZIP_FASTEST  # level 9 would be 5-20x slower on speckle
    written = nib.load(tmp_path / "m_mask.nii.gz")
    np.testing.assert_array_equal(np.asarray(written.dataobj), mask[0].numpy())
    np.testing.assert_allclose(written.affine, mask.affine.numpy())


def test_tiles_are_the_target_slices_or_a_few_interior_ones():
    many = list(range(3, 40))
    chosen = choose_tiles(many, 50)
    assert len(chosen) == MAX_TILES and chosen[0] == 3 and chosen[-1] == 39
    assert choose_tiles([5, 7], 50) == [5, 7]
    empty = choose_tiles([], 50)
    assert len(empty) == EMPTY_TILES and 0 not in empty and 49 not in empty


def test_boxes_are_drawn_where_the_view_puts_their_pixels():
    height, width = 12, 20
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[2:5, 11:18] = 255  # rows 2..4, columns 11..17
    box = (11 / width, 2 / height, 18 / width, 5 / height)
    shown = np.asarray(Image.fromarray(mask).transpose(RADIOLOGICAL_VIEW))
    rows, columns = np.nonzero(shown)
    pixel_edges = np.array([columns.min(), rows.min(), columns.max() + 1, rows.max() + 1], dtype=float)
    np.testing.assert_allclose(display_box(box), pixel_edges / np.tile(shown.shape[::-1], 2))
