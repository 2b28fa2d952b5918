"""Metrics (paper Sec. 5.1) against hand-computed values, per kind, across batches and across DDP ranks."""

from __future__ import annotations

import socket

import ignite.distributed as idist
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from ignite.engine import Engine
from ignite.exceptions import NotComputableError

from bundle.metrics import (
    METRIC_NAMES,
    BoxAccuracy,
    BoxIoU,
    CIoU,
    Dice,
    GIoU,
    NegativesWithMask,
    PresenceF1,
    PresencePrecision,
    PresenceRecall,
)

FG, BG = 3.0, -3.0  # confident logits


def _logits(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor([[FG if v else BG for v in row] for row in rows])


def _mask(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def _output(rows: list[dict]) -> dict:
    """The evaluator output dict of some rows."""
    return {
        "pred_masks": [r["pred"] for r in rows],
        "masks": [r["mask"] for r in rows],
        "pred_boxes": torch.tensor([r["pred_box"] for r in rows]),
        "boxes": torch.tensor([r["box"] for r in rows]),
        "box_valid": torch.tensor([r["valid"] for r in rows]),
        "present": torch.tensor([r.get("present", True) for r in rows]),
        "kinds": [r["kind"] for r in rows],
        "turns": [r.get("turn", 1) for r in rows],
    }


# Four targets of different sizes; intersections / unions 1/2, 0/0, 0/2, 4/4; box IoUs 1, 1/3, 0.6, (no box).
ZERO_LOGIT_EMPTY = _logits([[0, 0], [0, 0], [0, 0]]).index_fill_(1, torch.tensor([0]), 0.0)  # logit 0 is background
ROWS = [
    {"pred": _logits([[1, 1, 0], [0, 0, 0]]), "mask": _mask([[1, 0, 0], [0, 0, 0]]),
     "pred_box": [0, 0, 0.5, 0.5], "box": [0, 0, 0.5, 0.5], "valid": True, "kind": "label"},
    {"pred": ZERO_LOGIT_EMPTY, "mask": _mask([[0, 0], [0, 0], [0, 0]]),
     "pred_box": [0, 0, 0.5, 0.5], "box": [0.25, 0, 0.75, 0.5], "valid": True, "kind": "short"},
    {"pred": _logits([[0, 0], [0, 0]]), "mask": _mask([[1, 1], [0, 0]]),
     "pred_box": [0, 0, 1, 1], "box": [0, 0, 1, 0.6], "valid": True, "kind": "long"},
    {"pred": _logits([[1], [1], [1], [1]]), "mask": _mask([[1], [1], [1], [1]]),
     "pred_box": [0.1, 0.1, 0.2, 0.2], "box": [0, 0, 0, 0], "valid": False, "kind": "long"},
]  # fmt: skip


def _feed(metric, *outputs: dict) -> None:
    """Updates ``metric`` as an attached engine would (the values of its required keys, in order)."""
    for output in outputs:
        metric.update(tuple(output[k] for k in metric.required_output_keys))


def _computed(metric, *outputs: dict) -> dict:
    _feed(metric, *outputs)
    return metric.compute()


def _all_metrics() -> list:
    return [Dice(), GIoU(), CIoU(), BoxIoU(), BoxAccuracy()]


def _assert_close(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, abs=1e-6), key


def test_dice_averages_per_target_dice_with_both_empty_counting_as_one():
    expected = {"dice": (2 / 3 + 1 + 0 + 1) / 4, "dice_label": 2 / 3, "dice_short": 1.0, "dice_long": 0.5}
    _assert_close(_computed(Dice(), _output(ROWS)), expected)


def test_giou_averages_per_target_iou_with_both_empty_counting_as_one():
    expected = {"giou": (0.5 + 1 + 0 + 1) / 4, "giou_label": 0.5, "giou_short": 1.0, "giou_long": 0.5}
    _assert_close(_computed(GIoU(), _output(ROWS)), expected)


def test_ciou_divides_summed_intersections_by_summed_unions():
    expected = {"ciou": (1 + 0 + 0 + 4) / (2 + 0 + 2 + 4), "ciou_label": 0.5, "ciou_short": 1.0, "ciou_long": 4 / 6}
    _assert_close(_computed(CIoU(), _output(ROWS)), expected)


def test_box_iou_averages_over_rows_with_a_ground_truth_box():
    expected = {"box_iou": (1 + 1 / 3 + 0.6) / 3, "box_iou_label": 1.0, "box_iou_short": 1 / 3, "box_iou_long": 0.6}
    _assert_close(_computed(BoxIoU(), _output(ROWS)), expected)


def test_box_accuracy_counts_valid_rows_above_the_threshold():
    expected = {"box_acc": 2 / 3, "box_acc_label": 1.0, "box_acc_short": 0.0, "box_acc_long": 1.0}
    _assert_close(_computed(BoxAccuracy(), _output(ROWS)), expected)
    strict = {"box_acc": 1 / 3, "box_acc_label": 1.0, "box_acc_short": 0.0, "box_acc_long": 0.0}
    _assert_close(_computed(BoxAccuracy(threshold=0.7), _output(ROWS)), strict)
    lenient = {"box_acc": 1.0, "box_acc_label": 1.0, "box_acc_short": 1.0, "box_acc_long": 1.0}
    _assert_close(_computed(BoxAccuracy(threshold=0.3), _output(ROWS)), lenient)


def test_only_kinds_seen_are_reported():
    assert _computed(Dice(), _output(ROWS[2:])).keys() == {"dice", "dice_long"}
    # a kind whose rows have no ground-truth box has no box value
    assert _computed(BoxIoU(), _output([ROWS[0], ROWS[3]])).keys() == {"box_iou", "box_iou_label"}


def test_batches_accumulate_and_reset_starts_over():
    dice = Dice()
    _assert_close(_computed(dice, _output(ROWS[:1]), _output(ROWS[1:])), _computed(Dice(), _output(ROWS)))
    dice.reset()
    _assert_close(_computed(dice, _output(ROWS[2:3])), {"dice": 0.0, "dice_long": 0.0})


def test_nothing_seen_is_not_computable():
    for metric in _all_metrics():
        with pytest.raises(NotComputableError):
            metric.compute()
    with pytest.raises(NotComputableError, match="BoxIoU"):
        _computed(BoxIoU(), _output(ROWS[3:]))


def test_unknown_or_missing_query_kinds_are_refused():
    with pytest.raises(ValueError, match="unknown query kinds"):
        _feed(Dice(), _output(ROWS[:1]) | {"kinds": ["implicit"]})
    with pytest.raises(ValueError, match="1 query kinds and 2 turns for 2 rows"):
        _feed(BoxIoU(), _output(ROWS[:2]) | {"kinds": ["label"]})


def test_attached_metrics_read_the_output_dict_and_store_each_key_and_a_scalar_under_their_name():
    engine = Engine(lambda _, batch: batch)
    for metric in _all_metrics():
        metric.attach(engine, f"val_{metric.name}")
    engine.run([_output(ROWS[:2]), _output(ROWS[2:])], max_epochs=1)
    metrics = engine.state.metrics
    assert metrics["dice_long"] == pytest.approx(0.5) and metrics["box_acc"] == pytest.approx(2 / 3)
    assert set(METRIC_NAMES) <= metrics.keys()
    # a scalar under the attached name: MONAI compares the key metric with its best value
    for name in METRIC_NAMES:
        assert isinstance(metrics[f"val_{name}"], float) and metrics[f"val_{name}"] == metrics[name]


def test_a_metric_may_be_attached_under_its_base_name():
    engine = Engine(lambda _, batch: batch)
    Dice().attach(engine, "dice")
    engine.run([_output(ROWS)], max_epochs=1)
    assert engine.state.metrics["dice"] == pytest.approx(2 / 3)


# ---- DDP --------------------------------------------------------------------------------------


def _random_rows(seed: int, count: int) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(count):
        height, width = (int(v) for v in torch.randint(1, 6, (2,), generator=generator))
        corner = torch.rand(2, 2, generator=generator) * 0.5
        rows.append({
            "pred": torch.randn(height, width, generator=generator),
            "mask": (torch.rand(height, width, generator=generator) > 0.6).float(),
            "pred_box": torch.cat([corner[0], corner[0] + 0.5]).tolist(),
            "box": torch.cat([corner[1], corner[1] + 0.4]).tolist(),
            "valid": bool(torch.rand(1, generator=generator) > 0.2),
            "kind": ("label", "short", "long")[int(torch.randint(0, 3, (1,), generator=generator))],
        })  # fmt: skip
    return rows


def _simulated_two_rank_compute(metric, peer, monkeypatch) -> dict:
    """``metric.compute()`` as rank 0 of two, ``peer`` being rank 1, through ignite's own sync_all_reduce."""
    monkeypatch.setattr(idist, "get_world_size", lambda: 2)
    sent = []
    monkeypatch.setattr(idist, "all_reduce", lambda tensor, op="SUM", group=None: sent.append(tensor.clone()) or tensor)
    try:
        peer.compute()  # records what rank 1 contributes to each all_reduce
    except NotComputableError:  # rank 1's shard alone may hold no valid box; its sums were still sent
        pass
    received = iter(sent)
    monkeypatch.setattr(idist, "all_reduce", lambda tensor, op="SUM", group=None: tensor + next(received))
    return metric.compute()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), split=st.integers(1, 7))
def test_two_shards_reduce_to_the_result_of_one_process_over_all_data(seed, split):
    rows = _random_rows(seed, 8)
    for whole, first, second in zip(_all_metrics(), _all_metrics(), _all_metrics()):
        try:
            expected = _computed(whole, _output(rows))
        except NotComputableError:  # no valid box in the draw
            continue
        _feed(first, _output(rows[:split]))
        _feed(second, _output(rows[split:]))
        with pytest.MonkeyPatch.context() as monkeypatch:
            _assert_close(_simulated_two_rank_compute(first, second, monkeypatch), expected)


def _ddp_rank_agrees_with_one_process(local_rank: int, outputs: list[dict], expected: dict) -> None:
    """Runs on each gloo rank: an engine over its shard must report the single-process metrics."""
    engine = Engine(lambda _, batch: batch)
    for metric in _all_metrics():
        metric.attach(engine, f"val_{metric.name}")
    engine.run(outputs[idist.get_rank() :: idist.get_world_size()], max_epochs=1)
    results = {k: v for k, v in engine.state.metrics.items() if not k.startswith("val_")}
    _assert_close(results, expected)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_metrics_under_gloo_ddp_equal_one_process_over_all_data():
    # rank 0 gets batches 0 and 2 (label + long), rank 1 gets 1 and 3: kinds differ between ranks
    outputs = [_output(ROWS[0:1]), _output(ROWS[1:2]), _output(ROWS[2:3]), _output(ROWS[3:4] + ROWS[1:2])]
    expected = {}
    for metric in _all_metrics():
        expected.update(_computed(metric, *outputs))
    with idist.Parallel(backend="gloo", nproc_per_node=2, master_port=_free_port()) as parallel:
        parallel.run(_ddp_rank_agrees_with_one_process, outputs, expected)


def test_mask_metrics_leave_out_rows_about_absent_targets():
    present = dict(pred=_logits([[1, 0]]), mask=_mask([[1, 0]]), pred_box=[0, 0, 1, 1], box=[0, 0, 1, 1], valid=True)
    absent = dict(pred=_logits([[1, 1]]), mask=_mask([[0, 0]]), pred_box=[0, 0, 1, 1], box=[0, 0, 0, 0], valid=False)
    output = _output([present | {"kind": "label"}, absent | {"kind": "label", "present": False}])
    assert _computed(Dice(), output)["dice"] == 1.0
    assert _computed(CIoU(), output)["ciou"] == 1.0


def test_presence_metrics_count_masks_against_whether_the_target_is_there():
    def row(reported: bool, truth: bool) -> dict:
        pred = _logits([[1 if reported else 0, 0]])
        return dict(pred=pred, mask=_mask([[1 if truth else 0, 0]]), pred_box=[0, 0, 1, 1], box=[0, 0, 1, 1],
                    valid=truth, kind="short", present=truth)  # fmt: skip

    # TP, TP, FP, FN, TN, TN
    output = _output([row(True, True), row(True, True), row(True, False), row(False, True), row(False, False),
                      row(False, False)])  # fmt: skip
    assert _computed(PresencePrecision(), output)["presence_precision"] == pytest.approx(2 / 3)
    assert _computed(PresenceRecall(), output)["presence_recall"] == pytest.approx(2 / 3)
    assert _computed(PresenceF1(), output)["presence_f1"] == pytest.approx(4 / 6)
    assert _computed(NegativesWithMask(), output)["negatives_with_mask"] == pytest.approx(1 / 3)


def test_turns_are_reported_apart_once_a_follow_up_is_seen():
    assert not [k for k in _computed(Dice(), _output(ROWS)) if "turn" in k], "single questions: no turn keys"
    follow_up = {**ROWS[2], "kind": "follow_up", "turn": 2}  # Dice 0
    computed = _computed(Dice(), _output([ROWS[0], follow_up]))
    _assert_close(computed, {"dice": 1 / 3, "dice_label": 2 / 3, "dice_follow_up": 0.0,
                             "dice_turn1": 2 / 3, "dice_turn2": 0.0})  # fmt: skip
    with pytest.raises(ValueError, match="turn numbers must be from 1 to 8"):
        _feed(Dice(), _output([{**ROWS[0], "turn": 9}]))
