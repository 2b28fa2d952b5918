"""Command-line help shows each option's default, and only defaults there are."""

from __future__ import annotations

import argparse

import pytest

from bundle.phantoms.__main__ import parse_args
from common.cli import DefaultsHelpFormatter


def help_text() -> str:
    parser = argparse.ArgumentParser(prog="tool", formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--out", required=True, help="where")
    parser.add_argument("--seed", type=int, default=0, help="seed")
    parser.add_argument("--rate", type=float, default=0.2, help="rate")
    parser.add_argument("--name", help="a name")
    parser.add_argument("--flag", action="store_true", help="a switch")
    parser.add_argument("--mode", default="fast", help="mode (default: the fast one)")
    return " ".join(parser.format_help().split())


def test_defaults_are_shown_where_there_is_one():
    text = help_text()
    assert "seed (default: 0)" in text and "rate (default: 0.2)" in text
    assert "where (default" not in text and "a name (default" not in text and "a switch (default" not in text
    assert text.count("(default: the fast one)") == 1 and "(default: fast)" not in text


def test_the_phantom_generator_help_shows_its_defaults(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 0)" in text and "validation (default: 0.2)" in text and "testing (default: 0.1)" in text
