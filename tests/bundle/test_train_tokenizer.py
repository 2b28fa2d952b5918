"""Learning a BPE tokenizer from a dataset's conversations (``python -m bundle.train_tokenizer``)."""

from __future__ import annotations

import pytest

from bundle.phantoms import write_dataset
from bundle.prompts import PromptBuilder, label_question
from bundle.train_tokenizer import dataset_corpus, main
from common.errors import DataError
from networks import build_tokenizer
from networks.tokenizer import byte_level_tokenizer


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("phantoms") / "data", 3, seed=5, shape=(64, 64, 16)).parent


@pytest.fixture(scope="module")
def learned(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    assert main(["--dataset_dir", str(dataset), "--out", str(out), "--vocab-size", "600"]) == 0
    return out


def test_the_corpus_holds_every_label_question_and_reasoning_explanation(dataset):
    texts = dataset_corpus(dataset)
    assert any("Please segment and locate the liver" in t for t in texts)
    assert any("explain why." in t and "[/INST] It is and . " in t for t in texts)


def test_a_learned_tokenizer_shortens_the_conversations_and_round_trips_any_text(learned):
    tokenizer = build_tokenizer(tokenizer_path=learned)
    question = label_question("left kidney")
    assert len(tokenizer(question).input_ids) * 2 < len(byte_level_tokenizer()(question).input_ids)
    for text in ("Which organ filters blood?", "Tumeur hépatique: où est-elle? 肝脏"):
        assert tokenizer.decode(tokenizer(text, add_special_tokens=False).input_ids) == text
    # MediSee's own tokens are whole tokens, as with every other tokenizer source
    prompts = PromptBuilder(tokenizer, 4)
    ids = prompts.training_example(question).input_ids.tolist()
    assert tokenizer.convert_tokens_to_ids("[SEG]") in ids and ids.count(prompts.image_token_id) == 4


def test_an_existing_output_folder_is_not_overwritten(dataset, learned, capsys):
    before = sorted(p.name for p in learned.iterdir())
    assert main(["--dataset_dir", str(dataset), "--out", str(learned)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in learned.iterdir()) == before


def test_a_folder_without_dataset_json_is_named(tmp_path, capsys):
    assert main(["--dataset_dir", str(tmp_path), "--out", str(tmp_path / "tok")]) == 1
    assert "dataset.json" in capsys.readouterr().err
    assert not (tmp_path / "tok").exists()


def test_too_small_a_vocabulary_is_refused(dataset, tmp_path, capsys):
    assert main(["--dataset_dir", str(dataset), "--out", str(tmp_path / "tok"), "--vocab-size", "100"]) == 1
    assert "vocab_size" in capsys.readouterr().err
    assert not (tmp_path / "tok").exists()


def test_corpus_errors_are_data_errors(tmp_path):
    (tmp_path / "dataset.json").write_text('{"labels": {"0": "background"}}')
    with pytest.raises(DataError, match="no labels or prompts"):
        dataset_corpus(tmp_path)
