"""A small nanoGPT-style decoder: SDPA attention, tied embeddings, generation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


@dataclass
class GPTConfig:
    """Shape of a GPT."""

    vocab_size: int
    block_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False


class CausalSelfAttention(nn.Module):
    """Multi-head causal attention through `F.scaled_dot_product_attention`."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        return self.resid_drop(self.proj(y.transpose(1, 2).contiguous().view(b, t, c)))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias),
            nn.GELU(),
            nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Decoder-only language model; `forward(input_ids, labels=None)` returns a dict."""

    _no_split_modules = ["Block"]  # as transformers' models name theirs: FSDP makes each a unit

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.n_embd % cfg.n_head:
            from tuitrain.errors import TuitrainError

            raise TuitrainError(
                f"task option n_embd ({cfg.n_embd}) must be a multiple of n_head ({cfg.n_head})"
            )
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying
        self._checkpointing: dict | None = None
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        """Parameter count (tied weights once), position embeddings included."""
        return sum(p.numel() for p in self.parameters())

    def gradient_checkpointing_enable(self, kwargs: dict | None = None) -> None:
        """Recompute each block in backward; `kwargs` go to `torch.utils.checkpoint`."""
        opts = dict(kwargs or {})
        opts.setdefault("use_reentrant", False)
        self._checkpointing = opts

    def gradient_checkpointing_disable(self) -> None:
        """Keep activations again."""
        self._checkpointing = None

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        t = input_ids.shape[1]
        if t > self.config.block_size:
            raise ValueError(f"sequence of {t} tokens exceeds block_size {self.config.block_size}")
        pos = torch.arange(t, device=input_ids.device)
        x = self.drop(self.wte(input_ids) + self.wpe(pos))
        for block in self.blocks:
            if self._checkpointing is not None and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, **self._checkpointing)
            else:
                x = block(x)
        logits = self.lm_head(self.ln_f(x))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=-100
            )
        return out

    def _next_logprobs(self, ids: torch.Tensor, temperature: float, top_k: int | None) -> torch.Tensor:
        logits = self(ids[:, -self.config.block_size :])["logits"][:, -1, :].float()
        logits = logits / max(temperature, 1e-8)
        if top_k is not None and top_k < logits.size(-1):
            kth = torch.topk(logits, top_k).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return F.log_softmax(logits, dim=-1)

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        num_beams: int = 1,
    ) -> torch.Tensor:
        """Continue `input_ids` (B, T): sampling, greedy (temperature 0) or beam search."""
        was_training = self.training
        self.eval()
        try:
            if num_beams > 1:
                return torch.cat([self._beam(row[None], max_new_tokens, num_beams) for row in input_ids])
            ids = input_ids
            for _ in range(max_new_tokens):
                if temperature == 0:
                    logp = self._next_logprobs(ids, 1.0, None)
                    nxt = logp.argmax(dim=-1, keepdim=True)
                else:
                    logp = self._next_logprobs(ids, temperature, top_k)
                    nxt = torch.multinomial(logp.exp(), num_samples=1)
                ids = torch.cat([ids, nxt], dim=1)
            return ids
        finally:
            self.train(was_training)

    def _beam(self, ids: torch.Tensor, max_new_tokens: int, num_beams: int) -> torch.Tensor:
        """Beam search for one prompt: keeps the `num_beams` highest total log-probs."""
        beams = ids
        scores = torch.zeros(1, device=ids.device)
        for _ in range(max_new_tokens):
            logp = self._next_logprobs(beams, 1.0, None)  # (n, V)
            total = (scores[:, None] + logp).reshape(-1)
            k = min(num_beams, total.numel())
            top = torch.topk(total, k)
            vocab = logp.size(-1)
            src, tok = top.indices // vocab, top.indices % vocab
            beams = torch.cat([beams[src], tok[:, None]], dim=1)
            scores = top.values
        return beams[:1]
