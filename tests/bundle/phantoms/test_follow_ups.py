"""Follow-up questions of phantom dialogues: every claim holds on every slice it is asked about."""

from __future__ import annotations

import json

from bundle.data.dialogues import parse_dialogue_pools
from bundle.phantoms.facts import right_of, within
from bundle.phantoms.questions.follow_ups import CYST_INSIDE, DATASET_FOLLOW_UPS, PhantomFollowUp
from bundle.phantoms.verify import follow_up_violations
from tests.bundle.phantoms.series import all_entries


def test_every_follow_up_fact_holds_where_it_and_the_previous_label_are(phantoms):
    for index, phantom in enumerate(phantoms):
        assert follow_up_violations(phantom) == [], index


def test_a_false_follow_up_is_caught(phantoms):
    wrong_side = PhantomFollowUp("right kidney", "x", "left kidney", "x", (right_of("right kidney"),))
    nothing_inside = PhantomFollowUp("liver", "x", None, "x", (within("liver"),), denies="liver lesion")
    with_lesion = [p for p in phantoms if "liver lesion" in p.labels.values()]
    assert with_lesion, "the series holds a liver lesion"
    assert follow_up_violations(phantoms[0], [wrong_side])
    assert follow_up_violations(with_lesion[0], [nothing_inside])


def test_follow_ups_chain_through_their_targets():
    afters = {f.after for f in DATASET_FOLLOW_UPS}
    assert sum(1 for f in DATASET_FOLLOW_UPS if f.target in afters) >= 5, "most follow-ups can be followed up"
    assert {f.target for f in DATASET_FOLLOW_UPS} >= {"left kidney", "right kidney", "aorta", None}


def test_the_dataset_json_holds_dialogue_pools_the_reader_accepts(written):
    out, _, _ = written
    description = json.loads((out / "dataset.json").read_text())
    pools = parse_dialogue_pools(description["dialogues"], "dataset.json")
    assert "right kidney" in pools and all(f.question for fs in pools.values() for f in fs)
    cysts = [e for e in all_entries(description) if "renal cyst" in e["present"]]
    assert cysts, "the written series holds a renal cyst"
    for entry in cysts:
        own = parse_dialogue_pools(entry["dialogues"], "entry")
        targets = {f.target for fs in own.values() for f in fs if f.question == CYST_INSIDE}
        assert targets == {"renal cyst", None}, "one kidney holds the cyst, the other nothing"
