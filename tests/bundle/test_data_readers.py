"""2D readers (SA-Med2D json, MediSee test jsonl), prompt pools, query sampling and dataset mixing."""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from bundle.data.images2d import MediSeeTestDataset, SAMed2DDataset
from bundle.data.negatives import NegativeSampler
from bundle.data.queries import PromptPool, QuestionSampler, read_prompt_pools
from bundle.data.sampling import mixed_dataset
from networks import ConfigError, DataError

POOLS = {
    "liver": {
        "long": ["The large organ on the right that makes bile and stores glycogen."],
        "short": ["The bile-making organ."],
        "long_explanation": ["The liver produces bile."],
        "short_explanation": ["Bile comes from the liver."],
    }
}


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


@pytest.fixture()
def samed2d(tmp_path):
    """Two images: one with a liver and a spleen mask, one with a kidney mask."""
    image = np.arange(20 * 16, dtype=np.uint8).reshape(20, 16)
    _png(tmp_path / "images" / "a.png", image)
    _png(tmp_path / "images" / "b.png", image[::-1])
    masks = {}
    for name, rows in (("liver", slice(2, 6)), ("spleen", slice(10, 12)), ("kidney", slice(5, 9))):
        mask = np.zeros((20, 16), np.uint8)
        mask[rows, 3:7] = 255
        _png(tmp_path / "masks" / f"{name}.png", mask)
        masks[name] = f"masks/{name}.png"
    index = {
        "images/a.png": {masks["liver"]: "Liver", masks["spleen"]: "spleen"},
        "images/b.png": {masks["kidney"]: "kidney"},
    }
    (tmp_path / "data.json").write_text(json.dumps(index))
    return tmp_path


def test_samed2d_reads_images_masks_and_names(samed2d):
    data = SAMed2DDataset(samed2d / "data.json", sampler=QuestionSampler(kind_weights={"label": 1.0}))
    assert len(data) == 2
    sample = data[0]
    assert sample["image"].shape == (1, 20, 16) and float(sample["image"].max()) <= 1.0
    names = sorted(t.class_name for t in sample["targets"])
    assert names == ["liver", "spleen"]
    liver = next(t for t in sample["targets"] if t.class_name == "liver")
    assert liver.mask.dtype == torch.bool and int(liver.mask.sum()) == 16 and bool(liver.mask[2:6, 3:7].all())
    assert liver.query.kind == "label" and "liver" in liver.query.question


def test_samed2d_keeps_at_most_k_targets_per_image(samed2d):
    data = SAMed2DDataset(samed2d / "data.json", max_targets=1)
    assert [len(data[i]["targets"]) for i in range(len(data))] == [1, 1]


def test_eval_mode_enumerates_each_target_and_kind(samed2d, tmp_path):
    sampler = QuestionSampler({"liver": PromptPool.from_dict(POOLS["liver"], "test")})
    data = SAMed2DDataset(samed2d / "data.json", sampler=sampler, mode="eval")
    kinds = Counter((t.class_name, t.query.kind) for i in range(len(data)) for t in data[i]["targets"])
    assert kinds == Counter(
        {
            ("liver", "label"): 1,
            ("liver", "short"): 1,
            ("liver", "long"): 1,
            ("spleen", "label"): 1,
            ("kidney", "label"): 1,
        }
    )
    assert data[1]["targets"][0].query.question == data[1]["targets"][0].query.question  # deterministic


def test_missing_files_error_by_default_and_skip_on_request(samed2d, caplog):
    (samed2d / "masks" / "kidney.png").unlink()
    with pytest.raises(DataError, match="kidney.png"):
        SAMed2DDataset(samed2d / "data.json")
    data = SAMed2DDataset(samed2d / "data.json", on_missing="skip")
    assert len(data) == 1 and "kidney.png" in caplog.text


def test_paths_escaping_the_dataset_folder_are_refused(samed2d):
    (samed2d / "evil.json").write_text(json.dumps({"../outside.png": {"masks/liver.png": "liver"}}))
    with pytest.raises(DataError, match="escapes the dataset folder"):
        SAMed2DDataset(samed2d / "evil.json")


def test_a_mask_of_another_size_is_an_error(samed2d):
    _png(samed2d / "masks" / "liver.png", np.zeros((5, 5)))
    with pytest.raises(DataError, match="liver.png"):
        SAMed2DDataset(samed2d / "data.json", max_targets=3)[0]


def test_medisee_jsonl_gives_short_and_long_items_with_their_boxes(samed2d):
    lines = [
        {
            "image": "images/a.png",
            "mask": "masks/liver.png",
            "class_text": "liver",
            "long": "The big organ on the right.",
            "short": "Bile maker.",
            "bbox": [0.1, 0.2, 0.4, 0.3],
        },
    ]
    (samed2d / "test.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    data = MediSeeTestDataset(samed2d / "test.jsonl")
    assert len(data) == 2
    kinds = {data[i]["targets"][0].query.kind: data[i]["targets"][0] for i in range(2)}
    assert kinds["long"].query.question.startswith("The big organ on the right.")
    assert kinds["short"].query.question.startswith("Bile maker.")
    assert torch.allclose(kinds["short"].box, torch.tensor([0.1, 0.2, 0.4, 0.3]))


def test_medisee_jsonl_names_the_bad_line(samed2d):
    (samed2d / "bad.jsonl").write_text('{"image": "images/a.png"}\n')
    with pytest.raises(DataError, match="line 1"):
        MediSeeTestDataset(samed2d / "bad.jsonl")


def test_prompt_pools_must_align_explanations(tmp_path):
    (tmp_path / "pools.json").write_text(json.dumps(POOLS))
    assert read_prompt_pools(tmp_path / "pools.json")["liver"].short == POOLS["liver"]["short"]
    bad = {"liver": {**POOLS["liver"], "long_explanation": []}}
    bad["liver"]["long_explanation"] = ["a", "b"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(DataError, match=r"liver.*different lengths"):
        read_prompt_pools(tmp_path / "bad.json")


def test_question_sampler_follows_kind_weights_and_pairs_explanations():
    sampler = QuestionSampler(
        {"liver": PromptPool.from_dict(POOLS["liver"], "test")}, {"label": 0.5, "short": 0.25, "long": 0.25}
    )
    rng = random.Random(0)
    queries = [sampler.sample("liver", rng) for _ in range(2000)]
    share = Counter(q.kind for q in queries)
    assert abs(share["label"] / 2000 - 0.5) < 0.05 and abs(share["long"] / 2000 - 0.25) < 0.05
    long = next(q for q in queries if q.kind == "long")
    assert long.explanation == "The liver produces bile." and long.question.endswith("and explain why.")
    assert all(q.kind == "label" for q in (sampler.sample("spleen", rng) for _ in range(20)))  # no pool


def test_bad_kind_weights_name_the_problem():
    with pytest.raises(ConfigError, match="kind weights"):
        QuestionSampler(kind_weights={"label": 0.0, "short": 0.0})


class _Numbers(torch.utils.data.Dataset):
    def __init__(self, name, n):
        self.name, self.n = name, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.name


def test_mixed_sampler_draws_sources_at_the_ratio_whatever_their_sizes():
    concat, sampler = mixed_dataset(
        {"label": _Numbers("label", 1000), "reasoning": _Numbers("reasoning", 10)},
        {"label": 7, "reasoning": 3},
        num_samples=5000,
    )
    share = Counter(concat[i] for i in sampler)
    assert abs(share["reasoning"] / 5000 - 0.3) < 0.03


def test_mixed_sampler_rejects_ratios_that_do_not_match():
    with pytest.raises(ConfigError, match="ratios"):
        mixed_dataset({"a": _Numbers("a", 2)}, {"b": 1})


def test_2d_readers_ask_about_labels_absent_from_an_image(samed2d):
    data = SAMed2DDataset(samed2d / "data.json", negative_fraction=0.5, seed=0, mode="eval")
    negatives = [t for i in range(len(data)) for t in data[i]["targets"] if not t.present]
    assert negatives and all(not bool(t.mask.any()) for t in negatives)
    assert {t.class_name for t in negatives} <= {"liver", "spleen", "kidney"} | {"unrelated request"} | set(
        NegativeSampler().other_structures
    )
    assert data.label_set == ["kidney", "liver", "spleen"]
