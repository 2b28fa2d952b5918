"""Phantom generator: every question is true on every slice it is asked about; pools cover every label."""

from __future__ import annotations

import json

from bundle.phantoms import DATASET_POOLS, ORGANS, violations
from bundle.phantoms.questions import Perspective
from tests.bundle.phantoms.series import POOL_KEYS, all_entries


def test_every_question_fact_holds_on_every_slice_of_its_label(phantoms):
    for index, phantom in enumerate(phantoms):
        assert violations(phantom) == [], index


def test_every_label_pool_covers_both_perspectives_in_long_and_short_questions():
    assert set(DATASET_POOLS) == {spec.name for spec in ORGANS}
    for name, pool in DATASET_POOLS.items():
        for questions in (pool.long, pool.short):
            assert {q.perspective for q in questions} == set(Perspective), name
        for question in pool.questions:
            assert name not in question.text.lower(), question.text  # implicit: never names the answer
            assert name in question.explanation.lower(), question.explanation


def test_every_present_label_has_a_pool_with_aligned_explanations(written):
    out, _, _ = written
    description = json.loads((out / "dataset.json").read_text())
    for entry in all_entries(description):
        for name in entry["present"]:
            pools = [p for p in (description["prompts"].get(name), entry["prompts"].get(name)) if p]
            assert pools, name
            for pool in pools:
                assert set(pool) == set(POOL_KEYS)
                assert len(pool["long"]) == len(pool["long_explanation"]) > 0
                assert len(pool["short"]) == len(pool["short_explanation"]) > 0
        assert set(entry["prompts"]) <= set(entry["present"])
