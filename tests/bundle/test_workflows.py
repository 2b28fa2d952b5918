"""Bundle workflows end to end on the tiny config and phantom data (model-zoo style)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import nibabel as nib
import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow
from monai.engines.utils import IterationEvents
from safetensors.torch import load_file

from bundle.data import LengthGroupedBatchSampler
from bundle.engines.checkpoints import STATE_FILE, checkpoints_in
from networks.checkpoint import WEIGHTS_NAME
from tests.helpers.configs import ROOT, config_files, config_list
from tests.helpers.tiny import TINY

EVENT_FILE_PID = re.compile(r"\.(\d+)\.\d+$")
"""TensorBoard names event files events.out.tfevents.<time>.<host>.<pid>.<n>."""
TRAIN = config_list(config_files("train.json"))
SMALL = {"validate#dataset#kinds": ["label", "long"], "validate#dataset#min_target_pixels": 20, "val_batch_size": 8}


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))  # configs depend on bundle_root only, never on the cwd


def workflow(files, **overrides) -> ConfigWorkflow:
    flow = ConfigWorkflow(config_file=config_files(*files), workflow_type="train", bundle_root=str(ROOT), **overrides)
    flow.initialize()
    return flow


def train_flow(split_dataset, output_dir, **overrides):
    return workflow(
        ["train.json"], dataset_dir=str(split_dataset), output_dir=str(output_dir), **{**SMALL, **overrides}
    )


@pytest.mark.slow
def scalar_tags(folder) -> list[str]:
    """Every scalar tag of the TensorBoard event files in ``folder``, once per file that holds it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        events = EventAccumulator(str(path))
        events.Reload()
        tags += events.Tags()["scalars"]
    return tags


def test_train_then_evaluate_then_infer(split_dataset, tmp_path, capsys):
    flow = train_flow(split_dataset, tmp_path, epochs=2, batch_size=4)
    assert flow.check_properties() in (None, [])
    flow.run()
    trainer = flow.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 2 and trainer.state.iteration == 2 * trainer.state.epoch_length
    assert "dice" in flow.parser.get_parsed_content("validate#evaluator").state.metrics
    saved = checkpoints_in(tmp_path / "checkpoints")
    assert saved and saved[-1].name.endswith(f"{trainer.state.iteration:08d}")
    flow.finalize()
    tags = scalar_tags(tmp_path)
    terms = trainer.state.output["losses"]
    assert {f"train_loss/{'total' if t == 'loss' else t}" for t in terms} <= set(tags), tags
    assert {"train_loss/text", "train_loss/mask", "train_loss/box"} <= set(tags)
    assert tags.count("dice") == 1 and tags.count("giou") == 1, "each validation metric once, under its own name"
    assert not [tag for tag in tags if tag.startswith("val_")], tags

    capsys.readouterr()
    evaluation = workflow(
        ["train.json", "evaluate.json"], dataset_dir=str(split_dataset), output_dir=str(tmp_path), **SMALL
    )
    evaluation.run()
    printed = capsys.readouterr().out.splitlines()
    start = printed.index("MediSee evaluation")
    assert printed[start + 1] == f"  checkpoint: {saved[-1]}"
    assert re.fullmatch(r"  split: test \(1 volume, \d+ slices, \d+ questions\)", printed[start + 2]), printed
    assert printed[start + 3] == f"  metrics: {tmp_path / 'metrics.json'}"
    assert printed[start + 4].startswith("| query kind | Dice | gIoU |") and printed[-1].startswith("| all | ")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("dice", "giou", "ciou", "box_iou", "box_acc"):
        assert 0.0 <= metrics[key] <= 1.0
    assert set(metrics) >= {"label", "long"} and "dice" in metrics["long"]

    volume = split_dataset / "imagesTr" / "phantom_000.nii.gz"
    result = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(TINY), "--bundle_root", str(ROOT),
         "--image", str(volume), "--query", "Where is the liver?", "--output_dir", str(tmp_path / "infer"),
         "--checkpoint", str(saved[-1]), "--max_new_tokens", "4"],
        cwd=tmp_path, capture_output=True, encoding="utf-8", errors="replace", timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    mask = nib.load(tmp_path / "infer" / "phantom_000_mask.nii.gz")
    source = nib.load(volume)
    assert mask.shape == source.shape and (mask.affine == source.affine).all()


def test_training_resumes_from_the_saved_iteration(split_dataset, tmp_path):
    first = train_flow(split_dataset, tmp_path, epochs=2, batch_size=4, save_interval=3, val_interval=10)
    trainer = first.parser.get_parsed_content("train#trainer")
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=5), lambda engine: engine.terminate())
    first.run()
    assert trainer.state.iteration == 5
    assert [p.name for p in checkpoints_in(tmp_path / "checkpoints")] == ["iteration_00000003"]
    weights = {
        n: p.detach().clone()
        for n, p in first.parser.get_parsed_content("network").named_parameters()
        if p.requires_grad
    }

    second = train_flow(split_dataset, tmp_path, epochs=2, batch_size=4, save_interval=3, val_interval=10)
    resumed = second.parser.get_parsed_content("train#trainer")
    seen = []
    resumed.add_event_handler(Events.ITERATION_STARTED, lambda engine: seen.append(engine.state.iteration))
    network = second.parser.get_parsed_content("network")
    second.run()
    assert seen[0] == 4  # continues after the saved iteration 3
    assert resumed.state.iteration == 2 * resumed.state.epoch_length
    assert len(seen) == resumed.state.iteration - 3
    assert not all(torch.equal(weights[n], p) for n, p in network.named_parameters() if p.requires_grad)
    assert all((c / STATE_FILE).is_file() for c in checkpoints_in(tmp_path / "checkpoints"))


def test_accumulated_training_counts_optimizer_steps_in_schedule_checkpoints_and_resume(split_dataset, tmp_path):
    options = {"epochs": 1, "batch_size": 2, "gradient_accumulation_steps": 2, "save_interval": 2, "val_interval": 10,
               "warmup_steps": 1}  # fmt: skip
    first = train_flow(split_dataset, tmp_path, **options)
    trainer = first.parser.get_parsed_content("train#trainer")
    micro_batches = len(first.parser.get_parsed_content("train#dataloader"))
    steps = -(-micro_batches // 2)
    assert trainer.state.epoch_length == steps >= 4
    schedule = first.parser.get_parsed_content("train#lr_scheduler")
    assert schedule.lr_lambdas[0](steps) == 0.0 < schedule.lr_lambdas[0](steps - 1)  # decays to 0 at the last step
    forwards = []
    trainer.add_event_handler(IterationEvents.FORWARD_COMPLETED, lambda engine: forwards.append(engine.state.iteration))
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=3), lambda engine: engine.terminate())
    first.run()
    assert forwards == [1, 1, 2, 2, 3, 3]  # two micro-batches per iteration
    saved = checkpoints_in(tmp_path / "checkpoints")
    assert [p.name for p in saved] == ["iteration_00000002"]
    state = torch.load(saved[0] / STATE_FILE, weights_only=True)
    assert state["engine"]["iteration"] == state["lr_scheduler"]["last_epoch"] == 2

    second = train_flow(split_dataset, tmp_path, **options)
    resumed = second.parser.get_parsed_content("train#trainer")
    seen = []
    resumed.add_event_handler(Events.ITERATION_STARTED, lambda engine: seen.append(engine.state.iteration))
    second.run()
    assert seen[0] == 3 and resumed.state.iteration == steps
    assert second.parser.get_parsed_content("train#lr_scheduler").last_epoch == steps


def test_the_schedule_is_the_papers_linear_decay_unless_cosine_is_asked(split_dataset, tmp_path):
    total = {}
    for name in ("linear", "cosine"):
        flow = train_flow(split_dataset, tmp_path / name, epochs=3, batch_size=4, warmup_steps=2, lr_schedule=name)
        total[name] = 3 * len(flow.parser.get_parsed_content("train#dataloader"))
        factor = flow.parser.get_parsed_content("train#lr_scheduler").lr_lambdas[0]
        middle = 2 + (total[name] - 2) / 2
        assert factor(1) == 0.5 and factor(2) == 1.0 and factor(total[name]) == 0.0
        assert factor(middle) == pytest.approx(0.5)
        quarter = 2 + (total[name] - 2) / 4
        assert factor(quarter) == pytest.approx(0.75 if name == "linear" else 0.5 * (1 + 2**-0.5))
    assert train_flow(split_dataset, tmp_path / "default").parser["lr_schedule"] == "linear"


def test_bf16_training_autocasts_keeps_float32_master_weights_and_can_checkpoint_activations(split_dataset, tmp_path):
    flow = train_flow(
        split_dataset, tmp_path, epochs=1, batch_size=4, val_interval=10, dtype="bfloat16", gradient_checkpointing=True
    )
    trainer = flow.parser.get_parsed_content("train#trainer")
    network = flow.parser.get_parsed_content("network")
    trainable = {n: p.detach().clone() for n, p in network.named_parameters() if p.requires_grad}
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=2), lambda engine: engine.terminate())
    flow.run()
    evaluator = flow.parser.get_parsed_content("validate#evaluator")
    for engine in (trainer, evaluator):
        assert engine.amp and engine.amp_kwargs == {"dtype": torch.bfloat16}
    assert network.llava.is_activation_checkpointing
    params = dict(network.named_parameters())
    assert {params[n].dtype for n in trainable} == {torch.float32}
    assert {p.dtype for n, p in params.items() if n not in trainable} == {torch.bfloat16}
    assert torch.isfinite(torch.tensor(trainer.state.output["loss"]))
    assert not all(torch.equal(trainable[n], params[n]) for n in trainable)


def test_the_configured_sam_cache_serves_every_image_of_the_second_epoch(split_dataset, tmp_path):
    flow = train_flow(split_dataset, tmp_path, epochs=2, batch_size=4, val_interval=10, sam_cache_gib=0.1)
    trainer = flow.parser.get_parsed_content("train#trainer")
    flow.run()
    cache = trainer.sam_cache
    images = len(flow.parser.get_parsed_content("train#dataset"))
    assert (cache.misses, cache.hits, len(cache)) == (images, images, images)
    assert train_flow(split_dataset, tmp_path / "off").parser.get_parsed_content("train#trainer").sam_cache is None


def test_length_grouping_feeds_the_trainer_grouped_batches(split_dataset, tmp_path):
    flow = train_flow(split_dataset, tmp_path, epochs=1, batch_size=2, val_interval=10, length_grouping=4)
    loader = flow.parser.get_parsed_content("train#dataloader")
    assert isinstance(loader.batch_sampler.batch_sampler, LengthGroupedBatchSampler)  # inside the fast-forward
    assert len(loader) == -(-len(flow.parser.get_parsed_content("train#dataset")) // 2)
    trainer = flow.parser.get_parsed_content("train#trainer")
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=2), lambda engine: engine.terminate())
    flow.run()
    assert trainer.state.iteration == 2 and trainer.state.batch.input_ids.shape[0] >= 2
    plain = train_flow(split_dataset, tmp_path / "plain").parser.get_parsed_content("train#dataloader")
    assert not isinstance(plain.batch_sampler.batch_sampler, LengthGroupedBatchSampler)


def test_packed_sequences_train_and_validate_on_real_tokens_only(split_dataset, tmp_path):
    flow = train_flow(split_dataset, tmp_path, epochs=1, batch_size=4, val_interval=1, pack_sequences=True)
    network = flow.parser.get_parsed_content("network")
    trainer = flow.parser.get_parsed_content("train#trainer")
    evaluator = flow.parser.get_parsed_content("validate#evaluator")
    calls = []

    def record(module, args, kwargs):
        engine = trainer if network.training else evaluator
        calls.append((tuple(kwargs["inputs_embeds"].shape[:2]), int(engine.state.batch.attention_mask.sum())))

    network.llava.model.language_model.register_forward_pre_hook(record, with_kwargs=True)
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=2), lambda engine: evaluator.run() or engine.terminate())
    flow.run()
    assert network.pack_sequences and len(calls) > 2 and torch.isfinite(torch.tensor(trainer.state.output["loss"]))
    assert all(shape == (1, tokens) for shape, tokens in calls)  # one row holding exactly the batch's real tokens
    assert "dice" in evaluator.state.metrics
    assert not train_flow(split_dataset, tmp_path / "off").parser.get_parsed_content("network").pack_sequences


def test_the_training_network_is_compiled_as_the_compile_id_says(split_dataset, tmp_path):
    from networks.compile import is_compiled

    network = train_flow(split_dataset, tmp_path, compile="sam", compile_backend="aot_eager").parser.get_parsed_content(
        "network"
    )
    assert is_compiled(network.medsam.sam.image_encoder) and not is_compiled(network.llava.model.language_model)


def test_finetune_adds_the_similarity_loss(split_dataset, tmp_path):
    flow = workflow(
        ["train.json", "finetune.json"], dataset_dir=str(split_dataset), output_dir=str(tmp_path),
        epochs=1, batch_size=4, val_interval=10, checkpoint=None, **SMALL,
    )  # fmt: skip
    trainer = flow.parser.get_parsed_content("train#trainer")
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=2), lambda engine: engine.terminate())
    flow.run()
    losses = trainer.state.output["losses"]
    assert losses["similarity"] >= 0.0 and abs(losses["loss"] - sum(v for k, v in losses.items() if k != "loss")) < 1e-4


@pytest.mark.slow
def test_torchrun_trains_one_epoch_on_two_cpu_processes(split_dataset, tmp_path):
    files = config_list(config_files("train.json", "multi_gpu_train.json"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
         "-m", "monai.bundle", "run", "--config_file", files, "--dataset_dir", str(split_dataset),
         "--output_dir", str(tmp_path), "--epochs", "1", "--batch_size", "4", "--val_interval", "10"],
        cwd=tmp_path, capture_output=True, encoding="utf-8", errors="replace", timeout=900, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(checkpoints_in(tmp_path / "checkpoints")) == 1
    # TensorBoard writers create their event file when they are made: only rank 0 may make them
    writers = {EVENT_FILE_PID.search(p.name).group(1) for p in tmp_path.glob("events.out.tfevents.*")}
    assert len(writers) == 1, f"event files from {len(writers)} processes"


def test_command_line_names_a_bad_training_image_in_one_line(split_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(split_dataset, data)
    entry = json.loads((data / "dataset.json").read_text())["training"][0]
    (data / entry["image"]).write_text("not an image\n")
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", "--config_file", TRAIN,
         "--dataset_dir", str(data), "--output_dir", str(out)],
        cwd=tmp_path, capture_output=True, encoding="utf-8", errors="replace", timeout=600,
    )  # fmt: skip
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str((data / entry["image"]).resolve()) in last and "not a valid gzip" in last
    assert "Traceback" not in result.stderr and not out.exists()


KILL_RUN = {"epochs": 2, "batch_size": 2, "save_interval": 3, "val_interval": 10}
POLL_SECONDS = 0.05
STARTUP_LIMIT_SECONDS = 600
"""Only a guard against a hung child: the test waits for a file, never for a duration."""


def killed_mid_epoch(split_dataset, out) -> None:
    """Runs the tiny training as a child process and SIGKILLs it as soon as its first checkpoint is complete."""
    options = [arg for key, value in KILL_RUN.items() for arg in (f"--{key}", str(value))]
    child = subprocess.Popen(
        [sys.executable, "-m", "monai.bundle", "run", "--config_file", TRAIN,
         "--dataset_dir", str(split_dataset), "--output_dir", str(out), *options],
        cwd=out.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, encoding="utf-8", errors="replace",
    )  # fmt: skip
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    try:
        while not checkpoints_in(out / "checkpoints"):
            assert child.poll() is None, f"training ended before its first checkpoint: {child.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(POLL_SECONDS)
    finally:
        child.kill()  # SIGKILL: no handler, no cleanup runs
        child.communicate()


@pytest.mark.slow
def test_training_killed_with_sigkill_resumes_from_its_last_checkpoint(split_dataset, tmp_path):
    killed_mid_epoch(split_dataset, tmp_path)
    folder = tmp_path / "checkpoints"
    saved = checkpoints_in(folder)
    for checkpoint in saved:  # every checkpoint left is complete and readable
        assert load_file(checkpoint / WEIGHTS_NAME) and torch.load(checkpoint / STATE_FILE, weights_only=True)
    at = torch.load(saved[-1] / STATE_FILE, weights_only=True)["engine"]["iteration"]
    # what a kill during the next save would leave: a hidden temporary and a directory without its state
    (folder / f".iteration_{at + 1:08d}.tmp-x").mkdir()
    (folder / f".iteration_{at + 1:08d}.tmp-x" / WEIGHTS_NAME).write_bytes(b"half")
    shutil.copytree(saved[-1], folder / f"iteration_{at + 2:08d}", ignore=shutil.ignore_patterns(STATE_FILE))

    resumed = train_flow(split_dataset, tmp_path, **KILL_RUN)
    trainer = resumed.parser.get_parsed_content("train#trainer")
    seen = []
    trainer.add_event_handler(Events.ITERATION_STARTED, lambda engine: seen.append(engine.state.iteration))
    resumed.run()
    end = KILL_RUN["epochs"] * trainer.state.epoch_length
    assert at % trainer.state.epoch_length != 0, "the kill came mid-epoch"
    assert seen[0] == at + 1 and trainer.state.iteration == end and len(seen) == end - at
    assert checkpoints_in(folder)[-1].name == f"iteration_{end:08d}"
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in checkpoints_in(folder)), (
        "leftovers removed"
    )
