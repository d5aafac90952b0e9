"""The mask decoder for many prompts on one image, with the prompt-independent work done once.

SAM's mask decoder (``MaskDecoder.predict_masks`` with ``repeat_image=True``) copies the image
embedding once per prompt and runs every projection of the image tokens for each copy. For B
prompts on one image without a mask prompt (the automatic mask generator's case: 64 grid points
per call), this module computes the same outputs with the same weights, rearranged:

* layer 1 sees the same image tokens for every prompt: their projections (token-to-image keys
  and values, image-to-token queries) are computed once per image;
* in later layers the projections of the image tokens ``x`` that share an input are one GEMM
  (``[W_k; W_v; W_q] x``), and the positional-encoding part of a projection,
  ``W (x + pe) = W x + W pe``, is computed once per image;
* the final token-to-image attention and the heads run only for the tokens whose outputs are
  returned (the IoU token and the three multimask tokens); the image embedding and the
  high-resolution features are broadcast over the prompts, never copied per prompt.

The outputs equal the decoder's up to float rounding (summation order), as batched matmuls do.
Only float32 inference with our ``MaskDecoder`` / ``TwoWayTransformer`` takes this path;
:func:`supports` says whether a model does.

Shapes: B prompts, T tokens, N = h*w image tokens, C channels, H heads, d = C_internal / H.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from model.mask_decoder import MaskDecoder, mask_product
from model.transformer import Attention, TwoWayAttentionBlock, TwoWayTransformer


def supports(model: Any) -> bool:
    """Whether ``model``'s decoder is ours with SAM's layer layout (the first transformer layer
    skips the positional encoding, the others do not)."""
    decoder = getattr(model, "sam_mask_decoder", None)
    if type(decoder) is not MaskDecoder or type(decoder.transformer) is not TwoWayTransformer:
        return False
    layers = list(decoder.transformer.layers)
    return bool(
        len(layers) >= 1
        and all(type(layer) is TwoWayAttentionBlock for layer in layers)
        and layers[0].skip_first_layer_pe
        and not any(layer.skip_first_layer_pe for layer in layers[1:])
    )


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T) v over the last two dims (q already scaled); batch dims broadcast."""
    return torch.matmul(torch.softmax(torch.matmul(q, k.transpose(-1, -2)), dim=-1), v)


class _Heads:
    """Head split/merge and scale of one ``Attention`` module."""

    def __init__(self, attn: Attention) -> None:
        self.attn = attn
        self.heads = attn.num_heads
        self.d = attn.internal_dim // attn.num_heads
        self.scale = 1.0 / math.sqrt(self.d)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """(..., T, H*d) -> (..., H, T, d)."""
        *lead, t, _ = x.shape
        return x.reshape(*lead, t, self.heads, self.d).transpose(-3, -2)

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, T, d) -> (B, T, H*d)."""
        b, h, t, d = x.shape
        return x.transpose(1, 2).reshape(b, t, h * d)

    def tokens_attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``attn(q, k, v)`` with the image side already projected.

        Args:
            q: (B, T, C) token queries (before q_proj).
            k, v: projected image keys and values, (B, H, N, d).

        Returns:
            (B, T, C_out).
        """
        q_heads = self.split(self.attn.q_proj(q)) * self.scale
        return self.attn.out_proj(self.merge(_attend(q_heads, k, v)))

    def tokens_attend_shared(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        """``tokens_attend`` with image keys and values (H, N, d) shared by all prompts: the
        prompts' queries are stacked, not the image (B, T, C) -> (B, T, C_out)."""
        b, t, _ = q.shape
        q_heads = self.attn.q_proj(q).reshape(b * t, self.heads, self.d).transpose(0, 1)
        out = _attend(q_heads * self.scale, k, v)  # (H, B*T, d)
        return self.attn.out_proj(out.transpose(0, 1).reshape(b, t, self.heads * self.d))

    def image_attends_shared(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        """``image_attends`` with image queries (H, N, d), scaled, shared by all prompts:
        (B, T, C) token keys and values -> (B, N, C_out)."""
        b, t, _ = k.shape
        k_heads = self.attn.k_proj(k).reshape(b * t, self.heads, self.d).transpose(0, 1)
        scores = torch.matmul(q, k_heads.transpose(1, 2))  # (H, N, B*T)
        n = scores.shape[1]
        probs = torch.softmax(scores.view(self.heads, n, b, t), dim=-1).permute(2, 0, 1, 3)
        out = torch.matmul(probs, self.split(self.attn.v_proj(v)))  # (B, H, N, d)
        return self.attn.out_proj(self.merge(out))

    def image_attends(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``attn(q_img, k, v)`` with the image queries already projected and scaled.

        Args:
            q: (B, H, N, d) projected image queries times the scale.
            k, v: (B, T, C) token keys and values (before their projections).

        Returns:
            (B, N, C_out).
        """
        k_heads = self.split(self.attn.k_proj(k))
        v_heads = self.split(self.attn.v_proj(v))
        return self.attn.out_proj(self.merge(_attend(q, k_heads, v_heads)))


class _ImageProjections:
    """The image-side projections of one transformer layer as one GEMM plus a shared bias.

    ``pairs`` are ``(linear, with_pe)``: each projects the image tokens ``x`` (``with_pe``:
    ``x + pe``). ``project(x)`` returns their outputs, split, for (B, N, C) ``x``.
    """

    def __init__(self, pairs: list[tuple[torch.nn.Linear, bool]], key_pe: torch.Tensor) -> None:
        self.weight = torch.cat([linear.weight for linear, _ in pairs], dim=0)  # (sum, C)
        biases = []
        for linear, with_pe in pairs:
            bias = linear.bias.expand(key_pe.shape[0], -1)
            biases.append(bias + key_pe @ linear.weight.t() if with_pe else bias)
        self.bias = torch.cat(biases, dim=1).contiguous()  # (N, sum)
        self.sizes = [linear.weight.shape[0] for linear, _ in pairs]

    def project(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = torch.matmul(x, self.weight.t())
        out += self.bias
        return list(out.split(self.sizes, dim=-1))


class SharedImageDecoder:
    """``model.sam_mask_decoder`` for B prompts on one image, no mask prompt, float32.

    Args:
        model: a SAM 2 model with :func:`supports`, in eval mode.
        image_embed: (1, C, h, w) image embedding (``no_mem_embed`` already added).
        high_res_feats: [(1, C/8, 4h, 4w), (1, C/4, 2h, 2w)] (through conv_s0 / conv_s1), or
            None for a decoder without high-resolution features.

    Call under ``torch.inference_mode()``.
    """

    def __init__(
        self,
        model: Any,
        image_embed: torch.Tensor,
        high_res_feats: list[torch.Tensor] | None,
    ) -> None:
        if not supports(model):
            raise ValueError("SharedImageDecoder needs our MaskDecoder and TwoWayTransformer")
        self.decoder: MaskDecoder = model.sam_mask_decoder
        transformer: TwoWayTransformer = self.decoder.transformer
        self.layers: list[TwoWayAttentionBlock] = list(transformer.layers)  # type: ignore[arg-type]
        self.high_res_feats = high_res_feats
        if self.decoder.use_high_res_features and high_res_feats is None:
            raise ValueError("this decoder needs high_res_features")
        _, c, h, w = image_embed.shape
        self.embed_hw = (h, w)
        prompt_encoder = model.sam_prompt_encoder
        dense = prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        # image tokens with the "no mask" dense prompt, and their positional encoding: (1, N, C)
        self.keys = (image_embed + dense).flatten(2).transpose(1, 2).contiguous()
        self.key_pe = prompt_encoder.get_dense_pe().flatten(2).transpose(1, 2).contiguous()
        tokens = [self.decoder.iou_token.weight, self.decoder.mask_tokens.weight]
        self.first = 0
        if self.decoder.pred_obj_scores:
            tokens.insert(0, self.decoder.obj_score_token.weight)
            self.first = 1
        self.output_tokens = torch.cat(tokens, dim=0)  # (T_out, C)

        self.cross = [_Heads(layer.cross_attn_token_to_image) for layer in self.layers]
        self.back = [_Heads(layer.cross_attn_image_to_token) for layer in self.layers]
        self.final = _Heads(transformer.final_attn_token_to_image)
        pe = self.key_pe[0]
        # layer 1: every prompt sees the same image tokens, projected once: (H, N, d)
        x = self.keys[0]
        first_cross, first_back = self.cross[0], self.back[0]
        self.first_k = first_cross.split(first_cross.attn.k_proj(x + pe))  # (H, N, d)
        self.first_v = first_cross.split(first_cross.attn.v_proj(x))
        q_img = first_back.attn.q_proj(x + pe)
        self.first_q_img = first_back.split(q_img) * first_back.scale
        # later layers: token-to-image keys/values and image-to-token queries in one GEMM
        self.projections = [None] + [
            _ImageProjections(
                [
                    (layer.cross_attn_token_to_image.k_proj, True),
                    (layer.cross_attn_token_to_image.v_proj, False),
                    (layer.cross_attn_image_to_token.q_proj, True),
                ],
                pe,
            )
            for layer in self.layers[1:]
        ]
        final = transformer.final_attn_token_to_image
        self.final_projection = _ImageProjections([(final.k_proj, True), (final.v_proj, False)], pe)

    def _first_layer(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer 1 (its self-attention without positional encoding and residual): (B, T, C)
        tokens -> (queries (B, T, C), keys (B, N, C))."""
        layer = self.layers[0]
        queries = layer.norm1(layer.self_attn(q=tokens, k=tokens, v=tokens))
        attended = self.cross[0].tokens_attend_shared(queries + tokens, self.first_k, self.first_v)
        queries = layer.norm2(queries + attended)
        queries = layer.norm3(queries + layer.mlp(queries))
        out = self.back[0].image_attends_shared(self.first_q_img, queries + tokens, queries)
        return queries, layer.norm4(self.keys + out)

    def _later_layer(
        self, index: int, queries: torch.Tensor, keys: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``index`` >= 1: ``TwoWayAttentionBlock.forward`` (query_pe = the input
        tokens, key_pe = the image's positional encoding)."""
        layer = self.layers[index]
        cross, back = self.cross[index], self.back[index]
        q = queries + tokens
        queries = layer.norm1(queries + layer.self_attn(q=q, k=q, v=queries))
        projections = self.projections[index]
        assert projections is not None
        k, v, q_img = projections.project(keys)
        attended = cross.tokens_attend(queries + tokens, cross.split(k), cross.split(v))
        queries = layer.norm2(queries + attended)
        queries = layer.norm3(queries + layer.mlp(queries))
        q_img = back.split(q_img) * back.scale
        out = back.image_attends(q_img, queries + tokens, queries)
        return queries, layer.norm4(keys + out)

    def decode(
        self, sparse: torch.Tensor, multimask_output: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-res logits and IoU predictions of B prompts.

        Args:
            sparse: (B, S, C) sparse prompt embeddings (``sam_prompt_encoder`` output).
            multimask_output: three masks per prompt, else one (the decoder's choice, with
                dynamic multimask selection where the model uses it).

        Returns:
            logits (B, M, 4h, 4w) and IoU predictions (B, M), M = 3 or 1, as
            ``MaskDecoder.forward`` with ``repeat_image=True``.
        """
        dec = self.decoder
        batch = sparse.shape[0]
        tokens = torch.cat((self.output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse), dim=1)
        queries, keys = self._first_layer(tokens)
        for index in range(1, len(self.layers)):
            queries, keys = self._later_layer(index, queries, keys, tokens)

        first, n_masks = self.first, dec.num_mask_tokens
        if multimask_output:
            # only the IoU token and the multimask tokens' outputs are used
            wanted = torch.tensor([first, *range(first + 2, first + 1 + n_masks)])
            queries, tokens = queries[:, wanted], tokens[:, wanted]
            iou_at, masks_at, mask_ids = 0, 1, list(range(1, n_masks))
        else:
            iou_at, masks_at, mask_ids = first, first + 1, list(range(n_masks))
        k, v = self.final_projection.project(keys)
        attended = self.final.tokens_attend(
            queries + tokens, self.final.split(k), self.final.split(v)
        )
        out_tokens = dec.transformer.norm_final_attn(queries + attended)

        upscaled = self._upscale(keys)  # (B, C/8, 4h, 4w)
        hyper_in = torch.stack(
            [
                dec.output_hypernetworks_mlps[i](out_tokens[:, masks_at + j])
                for j, i in enumerate(mask_ids)
            ],
            dim=1,
        )  # (B, M', C/8)
        masks = mask_product(hyper_in, upscaled)
        iou = dec.iou_prediction_head(out_tokens[:, iou_at])  # (B, num_mask_tokens)
        if multimask_output:
            return masks, iou[:, 1:]
        if dec.dynamic_multimask_via_stability:
            return dec._dynamic_multimask_via_stability(masks, iou)
        return masks[:, 0:1], iou[:, 0:1]

    def _upscale(self, keys: torch.Tensor) -> torch.Tensor:
        """(B, N, C) image tokens -> (B, C/8, 4h, 4w) upscaled embedding (shared high-res
        features broadcast over the prompts)."""
        b, n, c = keys.shape
        src = keys.transpose(1, 2).reshape(b, c, *self.embed_hw)
        return self.decoder.upscale(src, self.high_res_feats)
