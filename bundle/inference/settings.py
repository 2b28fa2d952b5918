"""Checks and builders for the workflow's command-line settings (``--query``, ``--overwrite``, ``--window`` ...).

``python -m monai.bundle run`` parses override values with ``fire``: ``--overwrite true`` arrives as
the string ``"true"`` (:func:`networks.config.flag` reads it) and an unquoted comma splits a query into
a tuple. These helpers accept those forms and name the config id in every error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from monai.transforms import MapTransform

from bundle.inference import keys as K
from bundle.prompts import Turn
from bundle.user_text import UserText, command_line_text, read_user_text
from common.errors import ConfigError
from networks.config import flag
from transforms.intensity import intensity_transform

QUERY_PARTS_JOINER = ", "
"""fire splits ``--query "liver, spleen"`` at the comma; the parts are joined back with this."""


def check_query(query: Any) -> str:
    """The question as non-empty text (a :class:`bundle.user_text.UserText` gives its text).

    Raises:
        ConfigError: naming ``query`` when it is missing, empty or not text.
    """
    if isinstance(query, UserText):
        query = query.text
    if isinstance(query, tuple) and all(isinstance(part, str) for part in query):
        query = QUERY_PARTS_JOINER.join(query)
    if query is None or (isinstance(query, str) and not query.strip()):
        raise ConfigError("config 'query' is empty: pass the question with --query \"...\"")
    if not isinstance(query, str):
        raise ConfigError(f"config 'query' must be text, got {type(query).__name__} {query!r}; quote it")
    return query.strip()


def question(query: Any, query_file: Any = None, argv: Sequence[str] | None = None) -> str:
    """The run's question as text, never interpreted as config (:mod:`bundle.user_text`).

    In order: the text of ``query_file``; the ``--query`` text of the ``monai.bundle run`` command
    line exactly as typed (MONAI's parsed copy is not used: it rewrites ``::`` and splits at commas);
    ``query`` itself (text from a config file, or a :class:`bundle.user_text.UserText` from Python).

    Raises:
        ConfigError: the question is empty or not text.
        DataError: ``query_file`` is missing or not UTF-8 text.
    """
    if query_file is not None:
        return check_query(read_user_text(str(query_file), "query_file"))
    typed = command_line_text("query", argv)
    return check_query(query if typed is None else typed)


def image_intensity(
    window: str = "abdomen", a_min: float | None = None, a_max: float | None = None, in_place: bool = False
) -> MapTransform:
    """The intensity transform of the ``image`` key: explicit HU bounds, a CT window preset, or ``mr``.

    Args:
        window: a CT preset of :data:`transforms.intensity.WINDOW_PRESETS` or ``"mr"`` (percentile
            normalisation); used when neither bound is given.
        a_min: HU mapped to 0; with ``a_max``, replaces the preset.
        a_max: HU mapped to 1.
        in_place: a CT window works in the loaded volume's own memory (the same values; no second
            volume-sized copy), for a pipeline where nothing else holds the volume.

    Raises:
        ConfigError: an unknown preset, a single bound, or ``a_min >= a_max``.
    """
    if a_min is None and a_max is None:
        return intensity_transform(window, in_place)
    return intensity_transform({"a_min": a_min, "a_max": a_max}, in_place)


def check_query_fits(
    prompts: Any, entries: Sequence[Mapping[str, Any]], max_new_tokens: int = 0, generate_answer: bool | str = True
) -> None:
    """Refuses, before any volume is read, questions too long for the model.

    The teacher-forced conversation and, when answering, the generation prompt plus
    ``max_new_tokens`` must fit the language model's ``max_position_embeddings``.

    Args:
        prompts: the model's :class:`bundle.prompts.PromptBuilder`.
        entries: datalist entries with their ``query`` (or ``dialogue``: each turn after the earlier ones).
        max_new_tokens: longest generated answer.
        generate_answer: whether an answer is generated (the ``generate_answer`` setting).

    Raises:
        ConfigError: naming config 'query', the limit and where it comes from.
    """
    generating = flag(generate_answer, "generate_answer")
    # a folder of volumes asks them all the same: each question (or dialogue) is checked once
    for questions in dict.fromkeys(tuple(entry.get(K.DIALOGUE) or [entry[K.QUERY]]) for entry in entries):
        # the longest history: every earlier turn found its target (its answer holds every candidate)
        history = []
        for question in questions:
            try:
                prompts.inference_example(question, history)
                if generating:
                    length = len(prompts.prompt_ids(question, history)) + int(max_new_tokens)
                    prompts.check_length(question, length, earlier_turns=len(history))
            except ConfigError as exc:
                raise ConfigError(f"config '{'dialogue' if len(questions) > 1 else 'query'}': {exc}") from None
            history.append(Turn(question, prompts.answer()))
