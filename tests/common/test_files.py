"""Atomic writes: a failure in the middle of any writer leaves neither a partial file nor a temporary."""

from __future__ import annotations

import os
import stat

import pytest
import torch
from ignite.engine import Engine

from bundle.engines.checkpoints import STATE_FILE, TrainingCheckpoint, checkpoints_in
from bundle.inference import OutputLayout, SaveMaskd
from common.files import atomic_path, write_json
from networks import save_checkpoint


class Interrupted(Exception):
    """Stands for a crash, a full disk or a kill in the middle of a write."""


def interrupt(*args, **kwargs):
    raise Interrupted


def test_a_failed_file_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"version": 1})
    with pytest.raises(Interrupted), atomic_path(target) as tmp:
        tmp.write_text('{"version": 2, "half')
        interrupt()
    assert target.read_text() == '{\n  "version": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_failed_directory_write_leaves_nothing(tmp_path):
    with pytest.raises(Interrupted), atomic_path(tmp_path / "model", is_dir=True) as tmp:
        (tmp / "weights.safetensors").write_bytes(b"half")
        interrupt()
    assert not list(tmp_path.iterdir())


def test_a_mask_writer_failing_mid_write_leaves_no_mask(tmp_path, monkeypatch):
    layout = OutputLayout(tmp_path / "out")
    writer = SaveMaskd(layout)

    def half_written(path, value, data):
        path.write_bytes(b"\x1f\x8b half a gzip stream")
        interrupt()

    monkeypatch.setattr(writer, "write", half_written)
    with pytest.raises(Interrupted):
        writer({"pred": torch.zeros(1, 2, 2, 2), "name": "ct"})
    assert not list((tmp_path / "out").iterdir())


def test_a_checkpoint_failing_mid_write_leaves_the_previous_one_intact(tiny, tmp_path, monkeypatch):
    model, tokenizer = tiny
    target = save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    monkeypatch.setattr(tokenizer, "save_pretrained", interrupt)  # after the weights are written
    with pytest.raises(Interrupted):
        save_checkpoint(model, tokenizer, target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_a_training_checkpoint_without_its_state_is_never_listed(tiny, tmp_path, monkeypatch):
    model, tokenizer = tiny
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    saver = TrainingCheckpoint(tmp_path, model, tokenizer, optimizer)
    engine = Engine(lambda engine, batch: None)
    engine.state.iteration, engine.state.epoch = 7, 1
    monkeypatch.setattr(torch, "save", interrupt)
    with pytest.raises(Interrupted):
        saver.save(engine)
    assert checkpoints_in(tmp_path) == []
    assert not [p for p in (tmp_path / "iteration_00000007").iterdir() if p.name.startswith(f".{STATE_FILE}")]


def test_checkpoints_get_the_permissions_of_ordinary_files_and_folders(tiny, tmp_path):
    model, tokenizer = tiny
    old = os.umask(0o022)
    try:
        directory = save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()} == {0o644}
