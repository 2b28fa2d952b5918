"""Memory stays bounded on large volumes: the model sees ``batch_size`` slices at a time, never the whole volume.

The large-volume figure itself (512x512x1000) comes from ``bench/large_volume_rss.py``, run by hand.
"""

from __future__ import annotations

import torch
from monai.data import MetaTensor

from bundle.inference import SliceInferer
from bundle.prompts import PromptBuilder

SLICES = 10
BATCH = 4


class CountingMediSee(torch.nn.Module):
    """The tiny MediSee, recording how many slices each forward pass receives."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model
        self.rows: list[int] = []

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.model, name)

    def forward(self, **inputs):
        self.rows.append(int(inputs["sam_pixel_values"].shape[0]))
        assert inputs["clip_pixel_values"].shape[0] == self.rows[-1]
        return self.model(**inputs)


def test_slices_reach_the_model_in_batches_of_at_most_batch_size(tiny):
    model, tokenizer = tiny
    network = CountingMediSee(model)
    inferer = SliceInferer(PromptBuilder.for_model(tokenizer, model), batch_size=BATCH, progress=False)
    volume = MetaTensor(torch.rand(1, 20, 16, SLICES))
    with torch.no_grad():
        out = inferer(volume, network, query="Where is the liver?")
    assert network.rows == [BATCH, BATCH, SLICES - 2 * BATCH]
    assert out["pred"].shape == volume.shape and out["pred"].dtype == torch.uint8
