"""Datasets: readers for SA-Med2D-20M, MLMR-SD pools, the MediSee test jsonl and NIfTI label maps;
mixing, the typed batch and the collate that builds it, and the training loader that can fast-forward."""

from bundle.data.base import Target, TargetDataset, TargetDialogue
from bundle.data.batch import MediSeeBatch, build_batch
from bundle.data.batching import ConversationLengths, LengthGroupedBatchSampler
from bundle.data.collate import MediSeeCollate
from bundle.data.conversations import ConversationDataset
from bundle.data.dialogues import DialogueSampler, FollowUp, parse_dialogue_pools
from bundle.data.images2d import MediSeeTestDataset, SAMed2DDataset
from bundle.data.loader import FastForwardBatchSampler, ResumableDataLoader
from bundle.data.negatives import Negative, NegativeSampler
from bundle.data.nifti import NiftiSliceDataset
from bundle.data.queries import PromptPool, Query, QuestionSampler, read_prompt_pools
from bundle.data.sampling import mixed_dataset
from bundle.data.volumes import VolumeQuestion, VolumeQuestionDataset

__all__ = [
    "Target",
    "TargetDataset",
    "TargetDialogue",
    "DialogueSampler",
    "FollowUp",
    "parse_dialogue_pools",
    "MediSeeBatch",
    "build_batch",
    "MediSeeCollate",
    "ConversationDataset",
    "MediSeeTestDataset",
    "SAMed2DDataset",
    "NiftiSliceDataset",
    "PromptPool",
    "Query",
    "QuestionSampler",
    "read_prompt_pools",
    "mixed_dataset",
    "ConversationLengths",
    "LengthGroupedBatchSampler",
    "FastForwardBatchSampler",
    "ResumableDataLoader",
    "Negative",
    "NegativeSampler",
    "VolumeQuestion",
    "VolumeQuestionDataset",
]
