"""MediSee training losses: the end-to-end objective (paper Eq. 4) and the similarity loss (Eq. 5)."""

from bundle.losses.end_to_end import BoxLoss, MaskLoss, MediSeeLoss
from bundle.losses.similarity import SimilarityLoss, image_token_states, similarity_map

__all__ = ["BoxLoss", "MaskLoss", "MediSeeLoss", "SimilarityLoss", "image_token_states", "similarity_map"]
