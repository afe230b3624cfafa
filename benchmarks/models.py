"""Hand-written PyTorch twins of the benchmarked specs, and where each network's pieces live.

This module imports torch (and nothing of netspec): the torch-exporter contenders import it in
their own processes, so "build the module" costs what a PyTorch user's own model code costs.
ResNet-18 and the char LSTM come from `tests/reference/torch_models.py`; the MLP, the deep MLP and
ResNet-50 (torchvision's `resnet50` structure, written out here because torchvision is not a
dependency) are defined below, each with `canonical_keys()` (netspec canonical key -> state_dict
key) so that the same weights can be loaded into both sides.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from common import ROOT, SPECS

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.reference.torch_models import (  # noqa: E402
    CharLSTM,
    ResNet18,
    _bn,
    load_canonical,  # noqa: F401 - the sections load every twin through this module
)

# -- the MLP of specs/mlp.yaml ------------------------------------------------------------------


class MLP(nn.Module):
    """3 -> 4 ReLU -> 4 ReLU -> 1."""

    def __init__(self):
        super().__init__()
        self.hidden1 = nn.Linear(3, 4)
        self.hidden2 = nn.Linear(4, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.hidden1(x))
        x = torch.relu(self.hidden2(x))
        return self.out(x)

    @staticmethod
    def canonical_keys() -> dict[str, str]:
        return {
            f"{n}.{p}": f"{n}.{p}"
            for n in ("hidden1", "hidden2", "out")
            for p in ("weight", "bias")
        }


# -- benchmarks/specs/deep_mlp.yaml -------------------------------------------------------------


class DeepMLP(nn.Module):
    """512 -> 64 x Linear(512) + ReLU -> 10, as a user writes it: an nn.Sequential body."""

    def __init__(self, features: int = 512, width: int = 512, depth: int = 64, classes: int = 10):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(features if i == 0 else width, width), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(width, classes)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))

    def canonical_keys(self) -> dict[str, str]:
        t = {}
        for i in range(self.depth):
            for p in ("weight", "bias"):
                t[f"hidden_{i + 1}.{p}"] = f"body.{2 * i}.{p}"
        t.update({"out.weight": "out.weight", "out.bias": "out.bias"})
        return t


# -- benchmarks/specs/resnet50.yaml: torchvision.models.resnet50 --------------------------------


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (v1.5: the stride on the 3x3 convolution)."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet50(nn.Module):
    """torchvision.models.resnet50: Bottleneck, layers [3, 4, 6, 3]; 25,557,032 parameters."""

    LAYERS = (3, 4, 6, 3)

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 3)
        self.layer2 = self._make_layer(128, 4, stride=2)
        self.layer3 = self._make_layer(256, 6, stride=2)
        self.layer4 = self._make_layer(512, 3, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(2048, num_classes)
        for m in self.modules():  # torchvision's initialization
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(image))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    @classmethod
    def canonical_keys(cls) -> dict[str, str]:
        t: dict[str, str] = {"conv1.weight": "conv1.weight"}
        _bn(t, "bn1", "bn1")
        for stage, n in enumerate(cls.LAYERS, start=1):
            for block in range(1, n + 1):
                c, r = f"layer{stage}_{block}", f"layer{stage}.{block - 1}"
                for k in (1, 2, 3):
                    t[f"{c}.conv{k}.weight"] = f"{r}.conv{k}.weight"
                    _bn(t, f"{c}.bn{k}", f"{r}.bn{k}")
                if block == 1:
                    t[f"{c}.downsample_conv.weight"] = f"{r}.downsample.0.weight"
                    _bn(t, f"{c}.downsample_bn", f"{r}.downsample.1")
        t["fc.weight"], t["fc.bias"] = "fc.weight", "fc.bias"
        return t


# -- the benchmarked networks -------------------------------------------------------------------


@dataclass(frozen=True)
class Net:
    """One benchmarked network: its spec, its hand-written twin, an example input."""

    name: str
    spec: Path
    model: Callable[[], nn.Module]
    input_name: str
    example: Callable[[int], torch.Tensor]  # batch -> example input
    dynamic_axes: tuple[int, ...] = (0,)  # input axes that the ONNX graph keeps symbolic
    output_name: str = "output"

    def build(self) -> nn.Module:
        return self.model().eval()


SEQ = 64  # time steps of the char LSTM's example input


def _image(batch: int) -> torch.Tensor:
    return torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0))


NETS: dict[str, Net] = {
    "mlp": Net(
        "mlp",
        SPECS["mlp"],
        MLP,
        "x",
        lambda b: torch.randn(b, 3, generator=torch.Generator().manual_seed(0)),
        output_name="out",
    ),
    "resnet18": Net("resnet18", SPECS["resnet18"], ResNet18, "image", _image, output_name="fc"),
    "resnet50": Net("resnet50", SPECS["resnet50"], ResNet50, "image", _image, output_name="fc"),
    "char_lstm": Net(
        "char_lstm",
        SPECS["char_lstm"],
        CharLSTM,
        "tokens",
        lambda b: torch.randint(0, 65, (b, SEQ), generator=torch.Generator().manual_seed(0)),
        dynamic_axes=(0, 1),
        output_name="logits",
    ),
    "deep_mlp": Net(
        "deep_mlp",
        SPECS["deep_mlp"],
        DeepMLP,
        "x",
        lambda b: torch.randn(b, 512, generator=torch.Generator().manual_seed(0)),
        output_name="out",
    ),
}
