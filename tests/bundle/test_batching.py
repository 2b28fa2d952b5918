"""Length-grouped training batches: every index once per epoch, far less padding."""

from __future__ import annotations

import math

import pytest
from torch.utils.data import ConcatDataset, DistributedSampler, RandomSampler

from bundle.data import ConversationLengths, LengthGroupedBatchSampler, NiftiSliceDataset
from bundle.phantoms import write_dataset
from bundle.prompts import PromptBuilder
from common.errors import ConfigError

BATCH = 4
GROUP = 8


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantoms") / "data"
    write_dataset(out, n=2, seed=7, shape=(64, 64, 16), val_fraction=0.0, test_fraction=0.0)
    return out


@pytest.fixture(scope="module")
def dataset(phantom_dir):
    return NiftiSliceDataset(phantom_dir, split="training", max_targets=3, seed=0)


@pytest.fixture(scope="module")
def lengths(dataset, tiny):
    model, tokenizer = tiny
    return ConversationLengths(dataset, PromptBuilder.for_model(tokenizer, model))


def padding_share(batches: list[list[int]], lengths) -> float:
    """Share of padded positions when each batch is padded to its longest item."""
    real = padded = 0
    for batch in batches:
        sizes = [lengths(i) for i in batch]
        real += sum(sizes)
        padded += max(sizes) * len(sizes)
    return 1 - real / padded


def test_every_index_comes_once_per_epoch_and_the_order_changes_between_epochs(dataset, lengths):
    sampler = LengthGroupedBatchSampler(RandomSampler(dataset), lengths, BATCH, GROUP, seed=1)
    epochs = []
    for epoch in (1, 2):
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == math.ceil(len(dataset) / BATCH)
        assert sorted(i for b in batches for i in b) == list(range(len(dataset)))
        assert all(len(b) == BATCH for b in batches[:-1] if len(b) != len(dataset) % BATCH)
        epochs.append(batches)
    assert epochs[0] != epochs[1]


def test_grouping_cuts_the_padding_of_random_batches_by_more_than_half(dataset, lengths):
    dataset.set_epoch(1)
    indices = list(range(len(dataset)))
    plain = [indices[i : i + BATCH] for i in range(0, len(indices), BATCH)]  # what a shuffled loader pads like
    grouped = list(LengthGroupedBatchSampler(indices, lengths, BATCH, GROUP))
    before, after = padding_share(plain, lengths), padding_share(grouped, lengths)
    assert before > 0.15  # the phantom conversations do vary in length
    assert after < before / 2


def test_lengths_are_those_of_the_conversations_the_dataset_returns(dataset, lengths, tiny):
    model, tokenizer = tiny
    prompts = PromptBuilder.for_model(tokenizer, model)
    dataset.set_epoch(3)
    for index in (0, len(dataset) // 2, len(dataset) - 1):
        targets = dataset[index]["targets"]
        rows = [prompts.training_example(t.query.question, t.query.explanation).input_ids for t in targets]
        assert lengths(index) == max(len(r) for r in rows)


def test_lengths_find_items_in_a_concatenation_of_datasets(dataset, tiny, phantom_dir):
    model, tokenizer = tiny
    prompts = PromptBuilder.for_model(tokenizer, model)
    other = NiftiSliceDataset(phantom_dir, split="training", max_targets=1, seed=9)
    both = ConversationLengths(ConcatDataset([dataset, other]), prompts)
    single = ConversationLengths(other, prompts)
    assert [both(len(dataset) + i) for i in range(5)] == [single(i) for i in range(5)]


def test_ranks_of_a_distributed_sampler_share_the_epoch_without_overlap(dataset, lengths):
    seen = []
    for rank in (0, 1):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=0, drop_last=True)
        seen.append({i for b in LengthGroupedBatchSampler(sampler, lengths, BATCH, GROUP) for i in b})
    assert not seen[0] & seen[1] and len(seen[0]) == len(seen[1]) == len(dataset) // 2


def test_a_group_of_fewer_than_two_batches_is_refused_naming_the_key(dataset, lengths):
    with pytest.raises(ConfigError, match="length_grouping"):
        LengthGroupedBatchSampler(RandomSampler(dataset), lengths, BATCH, 1)
