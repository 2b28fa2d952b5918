"""User text is data: the question reaches the model as text on every entry point and is never evaluated.

``python -m monai.bundle run`` refuses a ``--query`` that MONAI's parser would interpret, before
anything runs, and otherwise asks the text exactly as typed; ``--query_file`` and Python's
``UserText`` carry any text, ``$``, ``@`` and ``%`` included, and ask it literally. (The deploy
app: ``tests/bundle/test_deploy.py``.)
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import fire
import monai.bundle
import pytest
from fire.parser import DefaultParseValue
from monai.bundle import ConfigParser

from bundle.inference import datalist, question
from bundle.user_text import (
    UserText,
    command_line_options,
    command_line_text,
    read_user_text,
    refuse_config_syntax,
)
from common.errors import ConfigError, DataError
from tests.helpers.configs import ROOT

DEMO = ["configs/model.json", "configs/demo_model.json", "configs/inference.json", "configs/demo.json"]
VOLUME = ROOT / "demo" / "imagesTr" / "phantom_000.nii.gz"
BUNDLE_MAIN = importlib.util.find_spec("monai.bundle.__main__").origin


def write_file_injection(target) -> str:
    """The issue's injection: it writes ``target`` if anything evaluates it."""
    return f"$__import__('pathlib').Path({str(target)!r}).write_text('x') or 'Where is the liver?'"


def injections(target) -> list[str]:
    # the last one as a list: python-fire parses it, then MONAI's parser would evaluate its element
    return [
        write_file_injection(target),
        "@image",
        "%configs/inference.json#image",
        f'["{write_file_injection(target)}"]',
    ]


def bundle_argv(*args: str) -> list[str]:
    """What ``sys.argv`` holds inside ``python -m monai.bundle run ARGS``."""
    return [BUNDLE_MAIN, "run", *args]


FIRE_FORMS = [
    ["--query", "Where is the liver?"],
    ["--query=Where is the liver?"],
    ["-query", "Where?"],
    ["--config_file", "a.json", "--query", "first", "--query", "second"],
    ["--query", "['$x']"],
    ["--query", "'$x'"],
    ["--query", "liver, spleen"],
    ["--query", "-5 degrees"],
    ["myrun", "--query", "x", "--image", "a.nii"],
    ["--image", "a.nii", "--query", "--overwrite", "true"],
]


@pytest.mark.parametrize("args", FIRE_FORMS, ids=range(len(FIRE_FORMS)))
def test_the_command_line_text_is_what_python_fire_hands_monai(args):
    received = fire.Fire(lambda *positional, **options: options, command=args)
    typed = command_line_options("query", args)
    if "query" in received and received["query"] is not True:
        assert DefaultParseValue(typed[-1]) == received["query"]
    else:
        assert typed == []  # absent, or a bare boolean flag: no text


def test_only_the_bundle_command_line_is_read():
    assert command_line_text("query", bundle_argv("--query", "Where?")) == "Where?"
    assert command_line_text("query", ["script.py", "run", "--query", "Where?"]) is None
    assert command_line_text("query", [BUNDLE_MAIN, "verify_metadata", "--query", "Where?"]) is None
    assert command_line_text("query", bundle_argv("--image", "a.nii")) is None
    assert command_line_text("query", bundle_argv("--query", "x", "--", "--query", "y")) == "x"  # fire's own flags


@pytest.mark.parametrize("first", ["$", "@", "%"])
def test_text_the_parser_would_interpret_is_refused_naming_query(first, tmp_path):
    for typed in (f"{first}image", f"['{first}image']", f"{{'a': '{first}image'}}"):
        with pytest.raises(ConfigError, match=rf"config 'query' starts with '\{first}'.*--query_file"):
            refuse_config_syntax("query", "query_file", bundle_argv("--query", typed))
    for typed in (f" {first}image", f"Where is {first}image?", "liver::segment 1"):  # the parser takes these as text
        refuse_config_syntax("query", "query_file", bundle_argv("--query", typed))
    refuse_config_syntax("query", "query_file", ["script.py", "--query", f"{first}image"])  # not the bundle's


def test_user_text_is_not_interpreted_by_monais_config_parser(tmp_path):
    target = tmp_path / "written"
    texts = [write_file_injection(target), "@image", "%configs/inference.json#image", "a::b @# c"]
    parser = ConfigParser({"image": "x.nii", "texts": [UserText(t) for t in texts]})
    parsed = parser.get_parsed_content("texts")
    assert [str(t) for t in parsed] == texts and not target.exists()


def test_the_question_comes_from_the_file_then_the_command_line_then_the_config(tmp_path):
    file = tmp_path / "question.txt"
    file.write_text("$ from the file\n", encoding="utf-8")
    argv = bundle_argv("--query", "typed 1::2, as is")
    assert question("config text", str(file), argv) == "$ from the file"
    assert question("config text, rewritten 1#2", None, argv) == "typed 1::2, as is"
    assert question(UserText("@image"), None, ["script.py"]) == "@image"
    with pytest.raises(DataError, match=r"not found: .*missing.txt \(config 'query_file'\)"):
        question(None, str(tmp_path / "missing.txt"))
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.txt is not UTF-8 text \(config 'query_file'\)"):
        read_user_text(tmp_path / "latin1.txt", "query_file")


def test_the_datalist_carries_the_text_as_data(tmp_path):
    target = tmp_path / "written"
    entries = datalist(str(VOLUME), UserText(write_file_injection(target)))
    assert entries[0]["query"] == write_file_injection(target) and not target.exists()


def bundle_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", *args],
        cwd=ROOT, capture_output=True, encoding="utf-8", errors="replace", timeout=600,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("files", [DEMO, [*DEMO, "configs/multi_gpu_inference.json"]], ids=["one", "multi_gpu"])
def test_the_command_line_refuses_injections_in_one_line_before_anything_runs(files, tmp_path):
    target, out = tmp_path / "written", tmp_path / "out"
    # the multi-GPU config replaces the initialize steps: one injection shows it refuses too
    for typed in injections(target) if files == DEMO else injections(target)[:1]:
        result = bundle_command("--config_file", str(files), "--query", typed, "--output_dir", str(out))
        last = result.stderr.strip().splitlines()[-1]
        assert result.returncode == 1 and last.startswith("error: config 'query' starts with "), result.stderr[-2000:]
        assert "Traceback" not in result.stderr and not target.exists() and not out.exists()


@pytest.mark.slow
def test_the_command_line_asks_the_typed_text_and_a_query_file_literally(tmp_path):
    target = tmp_path / "written"
    typed = "Where is the kidney, left or right? (ratio 1::2)"
    result = bundle_command("--config_file", str(DEMO), "--query", typed, "--output_dir", str(tmp_path / "typed"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "typed" / "phantom_000_result.json").read_text())["query"] == typed

    file = tmp_path / "question.txt"
    file.write_text(write_file_injection(target), encoding="utf-8")
    result = bundle_command("--config_file", str(DEMO), "--query_file", str(file), "--output_dir", str(tmp_path / "f"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "f" / "phantom_000_result.json").read_text())["query"] == write_file_injection(target)
    assert not target.exists()


@pytest.mark.slow
def test_python_callers_pass_any_text_as_user_text(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # configs/demo.json names its model relative to the bundle root
    target = tmp_path / "written"
    for index, text in enumerate(injections(target)[:3]):
        out = tmp_path / str(index)
        monai.bundle.run(
            config_file=DEMO, logging_file=False, query=UserText(text), output_dir=str(out), generate_answer=False
        )
        assert json.loads((out / "phantom_000_result.json").read_text())["query"] == text
    assert not target.exists()
