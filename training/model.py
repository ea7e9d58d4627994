"""The PicoSAM2 network: a depthwise-separable U-Net, 96x96 RGB in, 96x96 logits out.

Layout as published (1.26M parameters, about 336M MACs):

- block = [3x3 depthwise conv + BN + ReLU, 1x1 conv + BN + ReLU]
- encoder: block 3->48 at 96 px; then four times a stride-2 3x3 conv (+ BN + ReLU)
  followed by a block: 48->96 (48 px), 96->160 (24 px), 160->256 (12 px) and the
  bottleneck 256->320 (6 px)
- decoder: four stages of nearest x2 upsampling + block (320->192, 192->128,
  128->80, 80->40), each added to a 1x1 projection of the encoder feature at the same
  resolution; head 1x1 40->1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

#: Identifies this layout in checkpoints; loading refuses any other.
ARCHITECTURE = "picosam2-dsunet-v1"
INPUT_SIZE = 96
ENCODER_CHANNELS = (48, 96, 160, 256, 320)
DECODER_CHANNELS = (192, 128, 80, 40)


class SeparableBlock(nn.Module):
    """3x3 depthwise conv + BN + ReLU, then 1x1 conv + BN + ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.dw(x)))
        return F.relu(self.bn2(self.pw(x)))


class Downsample(nn.Module):
    """Stride-2 3x3 conv + BN + ReLU, channels unchanged."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class PicoSAM2(nn.Module):
    """Input (N, 3, 96, 96) ImageNet-normalised RGB; output (N, 1, 96, 96) logits.

    The prompt is implicit: the network segments the object at the centre of its input.
    """

    def __init__(self) -> None:
        super().__init__()
        e = ENCODER_CHANNELS
        self.enc0 = SeparableBlock(3, e[0])
        self.down = nn.ModuleList(Downsample(c) for c in e[:4])
        self.enc = nn.ModuleList(SeparableBlock(e[i], e[i + 1]) for i in range(4))
        d = DECODER_CHANNELS
        dec_in = (e[4], *d[:3])
        self.dec = nn.ModuleList(
            SeparableBlock(cin, cout) for cin, cout in zip(dec_in, d, strict=True)
        )
        # Skip projections: encoder features at 12, 24, 48 and 96 px.
        self.proj = nn.ModuleList(nn.Conv2d(cs, cd, 1) for cs, cd in zip(e[3::-1], d, strict=True))
        self.head = nn.Conv2d(d[-1], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        x = self.enc0(x)
        for down, enc in zip(self.down, self.enc, strict=True):
            skips.append(x)
            x = enc(down(x))
        for dec, proj, skip in zip(self.dec, self.proj, reversed(skips), strict=True):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = dec(x) + proj(skip)
        return self.head(x)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, size: int = INPUT_SIZE) -> int:
    """Multiply-accumulates of one forward pass (convolutions only)."""
    macs = 0

    def hook(module: nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        nonlocal macs
        kh, kw = module.kernel_size
        per_output = kh * kw * module.in_channels // module.groups
        macs += int(out.numel() // out.shape[0]) * per_output

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    model.train(was_training)
    for h in handles:
        h.remove()
    return macs


def load_weights(path: str | Path, *, use_ema: bool = True) -> PicoSAM2:
    """A PicoSAM2 from a checkpoint written by ``training.train`` (or a bare state dict
    saved with ``{"architecture": ARCHITECTURE, "model": state_dict}``).

    Raises SystemExit with a message naming the problem for a missing file, a file that
    is not a checkpoint, or a checkpoint of another architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise SystemExit(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise SystemExit(f"{path} is not a PicoSAM2 training checkpoint (no 'model' entry)")
    arch = ckpt.get("architecture")
    if arch != ARCHITECTURE:
        raise SystemExit(
            f"checkpoint {path} is for architecture {arch!r}, expected {ARCHITECTURE!r}"
        )
    state = ckpt["ema"] if use_ema and ckpt.get("ema") is not None else ckpt["model"]
    model = PicoSAM2()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise SystemExit(f"checkpoint {path} does not match the PicoSAM2 layout: {exc}") from exc
    return model.eval()


def weights_from_onnx(path: str | Path, calibration: torch.Tensor | None = None) -> PicoSAM2:
    """A PicoSAM2 with the weights of an fp32 ONNX export of this architecture (e.g. a
    shipped model, whose training checkpoint is not shipped), to fine-tune from.

    The export folds each batch norm into the convolution before it; here every such
    convolution takes the folded weight and bias and its batch norm becomes the identity
    (weight 1, bias the folded bias, mean 0, variance 1 - eps), which computes the same
    function. With ``calibration`` (a batch of normalised training crops) each batch norm
    instead takes that batch's per-channel mean and variance of its convolution's output
    as running statistics and as its affine part, which still computes the same function
    in eval mode and also keeps it in training mode, where batch norm normalises by batch
    statistics: fine-tuning then starts from the exported model, not from a re-scaled one.
    Raises SystemExit naming the problem when the file is not such an export.
    """
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:
        raise SystemExit(f"cannot read ONNX model {path}: {exc}") from exc
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    model = PicoSAM2().eval()
    # Convolutions followed by a batch norm, in the order the forward pass runs them:
    # the order the exported graph lists its Conv nodes.
    folded: list[tuple[nn.Conv2d, nn.BatchNorm2d]] = []
    pairs = {}
    for module in model.modules():
        if isinstance(module, SeparableBlock):
            pairs[module.dw] = module.bn1
            pairs[module.pw] = module.bn2
        elif isinstance(module, Downsample):
            pairs[module.conv] = module.bn

    def record(module: nn.Module, _inp: Any, _out: Any) -> None:
        if module in pairs:
            folded.append((module, pairs[module]))  # type: ignore[index]

    handles = [conv.register_forward_hook(record) for conv in pairs]
    with torch.no_grad():
        model(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE))
    for h in handles:
        h.remove()
    named = dict(model.named_parameters())
    convs = [n for n in graph.node if n.op_type == "Conv"]
    unnamed = [n for n in convs if n.input[1] not in named]
    if len(unnamed) != len(folded):
        raise SystemExit(
            f"{path}: {len(unnamed)} folded convolutions, expected {len(folded)} for PicoSAM2"
        )
    try:
        with torch.no_grad():
            for name, param in named.items():
                if name in weights:
                    param.copy_(torch.from_numpy(weights[name].copy()))
            for node, (conv, bn) in zip(unnamed, folded, strict=True):
                conv.weight.copy_(torch.from_numpy(weights[node.input[1]].copy()))
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(weights[node.input[2]].copy()))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
    except (RuntimeError, KeyError, IndexError) as exc:
        raise SystemExit(f"{path} does not match the PicoSAM2 layout: {exc}") from exc
    if calibration is not None:
        stats: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}

        def measure(module: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            stats[module] = (out.mean((0, 2, 3)), out.var((0, 2, 3), unbiased=False))

        handles = [conv.register_forward_hook(measure) for conv, _ in folded]
        with torch.no_grad():
            model(calibration)
            for conv, bn in folded:
                mean, var = stats[conv]
                bn.bias.add_(mean)
                bn.weight.copy_(torch.sqrt(var + bn.eps))
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)
        for h in handles:
            h.remove()
    return model
