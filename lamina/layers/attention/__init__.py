"""Attention layers: ``MultiHeadAttention``."""

from lamina.layers.attention.multi_head_attention import MultiHeadAttention

__all__ = ["MultiHeadAttention"]
