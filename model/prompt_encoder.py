"""SAM prompt encoder: points/boxes -> sparse tokens, mask logits -> dense embedding."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from model._bf16 import Conv2d
from model._layers import LayerNorm2d
from model.position_encoding import PositionEmbeddingRandom

# Point labels: 0 negative click, 1 positive click, 2 box top-left, 3 box bottom-right,
# -1 padding ("not a point").
NUM_POINT_LABELS = 4


class PromptEncoder(nn.Module):
    """Embeds prompts for the mask decoder.

    Image space is `input_image_size` (S, S) pixels; the decoder grid is `image_embedding_size`
    (S/16, S/16); mask prompts are logits of `mask_input_size` = 4x the grid (S/4, S/4).
    """

    def __init__(
        self,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int,
        activation: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = input_image_size
        self.image_embedding_size = image_embedding_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.num_point_embeddings = NUM_POINT_LABELS
        self.point_embeddings = nn.ModuleList(
            nn.Embedding(1, embed_dim) for _ in range(NUM_POINT_LABELS)
        )
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            activation(),
            Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            activation(),
            Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def _label_embedding(self, label: int) -> torch.Tensor:
        """`[1, C]` learned embedding added to points of `label` (0..3)."""
        return cast(nn.Embedding, self.point_embeddings[label]).weight

    def get_dense_pe(self) -> torch.Tensor:
        """`[1, embed_dim, S/16, S/16]` encoding of the decoder grid's cell centres, held
        token-major in memory (a permuted view of `[1, S/16, S/16, embed_dim]`).

        Without autograd the encoding is kept and returned again until the Gaussian matrix
        changes (a load, a move to another device): every decoder call asks for it."""
        if torch.is_grad_enabled():
            return self.pe_layer(self.image_embedding_size).unsqueeze(0)
        matrix = self.pe_layer.positional_encoding_gaussian_matrix
        key = (matrix.data_ptr(), matrix._version, matrix.device, self.image_embedding_size)
        cached = self.__dict__.get("_dense_pe")
        if cached is None or cached[0] != key:
            with torch.inference_mode(False):  # a normal tensor, usable outside inference mode
                pe = self.pe_layer(self.image_embedding_size).unsqueeze(0)
            cached = (key, pe)
            self.__dict__["_dense_pe"] = cached
        return cached[1]

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """points `[B, N, 2]` (x, y) pixels, labels `[B, N]` -> `[B, N(+1 if pad), C]`."""
        points = points + 0.5  # pixel centres
        if pad:
            pad_point = torch.zeros((points.shape[0], 1, 2), device=points.device)
            pad_label = -torch.ones((labels.shape[0], 1), device=labels.device)
            points = torch.cat([points, pad_point], dim=1)
            labels = torch.cat([labels, pad_label], dim=1)
        embedding = self.pe_layer.forward_with_coords(points, self.input_image_size)
        is_padding = (labels == -1).unsqueeze(-1)
        embedding = torch.where(
            is_padding, torch.zeros_like(embedding) + self.not_a_point_embed.weight, embedding
        )
        for label in range(NUM_POINT_LABELS):
            embedding = torch.where(
                (labels == label).unsqueeze(-1),
                embedding + self._label_embedding(label),
                embedding,
            )
        return embedding

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """boxes `[B, 4]` (x0, y0, x1, y1) pixels -> `[B, 2, C]`."""
        coords = (boxes + 0.5).reshape(-1, 2, 2)
        corners = self.pe_layer.forward_with_coords(coords, self.input_image_size)
        corners[:, 0, :] += self._label_embedding(2)
        corners[:, 1, :] += self._label_embedding(3)
        return corners

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns `(sparse [B, N, C], dense [B, C, S/16, S/16])`.

        points: (`[B, N, 2]` float pixel coords in the S x S input, `[B, N]` int labels);
        a padding point is appended when no boxes are given. boxes: `[B, 4]`.
        masks: `[B, 1, S/4, S/4]` logits, or None for the learned "no mask" embedding.
        """
        if points is not None:
            batch = points[0].shape[0]
        elif boxes is not None:
            batch = boxes.shape[0]
        elif masks is not None:
            batch = masks.shape[0]
        else:
            batch = 1
        device = self.not_a_point_embed.weight.device
        sparse = torch.empty((batch, 0, self.embed_dim), device=device)
        if points is not None:
            coords, labels = points
            sparse = torch.cat([sparse, self._embed_points(coords, labels, pad=boxes is None)], 1)
        if boxes is not None:
            sparse = torch.cat([sparse, self._embed_boxes(boxes)], dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            h, w = self.image_embedding_size
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, h, w)
        return sparse, dense
