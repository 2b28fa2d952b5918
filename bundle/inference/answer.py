"""The text answer: LLaVA's own ``generate()`` on one slice, greedy, from the generation prompt.

The prompt is ``<s>[INST] <image>\\n{question} [/INST]`` (the same one the teacher-forced rows
start with), so a trained model answers "It is [SEG] and [BBOX]." followed by its explanation.

Decoding one token at a time is launch-bound on a GPU: each step is a few hundred small kernels.
With ``cache="static"`` the key/value cache has a fixed shape, and transformers then compiles the
decoding step with CUDA graphs (``mode="reduce-overhead"``) on GPUs; the tokens are the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from bundle.prompts import PromptBuilder, Turn
from common.errors import ConfigError
from transforms.preprocess import clip_preprocess

CACHES = ("dynamic", "static")
NOT_FOUND = "The target was not found on any slice of this volume."
"""The answer when no slice holds the target and the generated text does not say so itself."""


def not_found_answer(generated: str, rejection_token: str | None) -> str:
    """The answer for a volume without the target: the model's own rejection, else :data:`NOT_FOUND`.

    The text was generated on the slice the model found likeliest; when it rejects (starts with the
    rejection token), it says what is not visible. When it does not (the model would have drawn a
    target there, but the presence decision or the 3D clean-up removed it), it contradicts the result,
    so a plain statement replaces it.
    """
    if rejection_token is not None and rejection_token in generated:
        return generated
    return NOT_FOUND


class AnswerGenerator:
    """Generates MediSee's text answer for one slice.

    Args:
        prompts: the prompt builder of the model's tokenizer.
        max_new_tokens: longest answer, in tokens.
        cache: ``dynamic`` (grows with the answer) or ``static`` (fixed shape: CUDA graphs on GPUs).
    """

    def __init__(self, prompts: PromptBuilder, max_new_tokens: int = 48, cache: str = "dynamic") -> None:
        if cache not in CACHES:
            raise ConfigError(f"config 'answer_cache' must be one of {CACHES}, got {cache!r}")
        self.prompts = prompts
        self.max_new_tokens = int(max_new_tokens)
        self.cache = cache
        tokenizer = prompts.tokenizer
        # tokens that carry no text; the candidate tokens stay visible, as the model wrote them
        self._hidden_ids = {tokenizer.bos_token_id, tokenizer.pad_token_id, prompts.image_token_id} - {None}

    def __call__(self, network: torch.nn.Module, image: torch.Tensor, query: str, history: Sequence[Turn] = ()) -> str:
        """The answer to ``query`` about one (C, H, W) slice with intensities in [0, 1].

        Args:
            network: a :class:`networks.MediSee` (its LLaVA generates; the heads are not used).
            image: the slice, on the model's device.
            query: the question.
            history: the earlier turns of a dialogue, as answered on this slice.
        """
        llava = network.llava
        ids = torch.tensor([self.prompts.prompt_ids(query, history)], device=image.device)
        pixels = clip_preprocess([image], llava.config.vision_config.image_size).to(llava.dtype)
        generated = llava.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            pixel_values=pixels,
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=self.prompts.tokenizer.pad_token_id,
            eos_token_id=self.prompts.tokenizer.eos_token_id,
            cache_implementation=None if self.cache == "dynamic" else self.cache,
        )
        return self.decode(generated[0, ids.shape[1] :].tolist())

    def decode(self, token_ids: list[int]) -> str:
        """The text of generated ids, up to the first end-of-sequence token."""
        eos = self.prompts.tokenizer.eos_token_id
        if eos in token_ids:
            token_ids = token_ids[: token_ids.index(eos)]
        kept = [i for i in token_ids if i not in self._hidden_ids]
        return self.prompts.tokenizer.decode(kept, skip_special_tokens=False).strip()
