"""Hand-written PyTorch reference models for the example specs in `specs/`.

These are written the way a PyTorch user would write them, independently of netspec (nothing
here is generated, and nothing imports netspec): ResNet18 copies torchvision's `resnet18`
structure (BasicBlock with conv1/bn1/relu/conv2/bn2/downsample, layer1..layer4, avgpool, fc),
DCGANGenerator is the PyTorch DCGAN tutorial's `nn.Sequential`, CharLSTM follows PyTorch's
word_language_model example (encoder / rnn / decoder). Their `state_dict()` keys therefore differ
from netspec's canonical keys; each model has a `canonical_to_reference(weights)` that maps
netspec's canonical weights (keys `<node path>.<param>`, arrays in PyTorch's layouts) onto its
own `state_dict()` keys, by an explicit table (`canonical_keys()`: canonical key -> reference
key).

Typical use in a parity test:

    ref = REFERENCES["resnet18"]
    model = ref.build()                        # eval mode
    load_canonical(model, weights)             # weights: dict[str, np.ndarray], canonical keys
    expected = model(ref.example_input())

Recurrent convention (netspec's): with `return_sequences: false` a layer gives each direction's
final hidden state, forward after the last step and backward after the first step, concatenated
forward first; for `nn.GRU` that is `torch.cat([h_n[-2], h_n[-1]], dim=1)`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BN_KEYS = ("weight", "bias", "running_mean", "running_var")


def _rename(
    weights: Mapping[str, np.ndarray], table: Mapping[str, str], model: str
) -> dict[str, torch.Tensor]:
    """Apply a canonical -> reference key table; every key on both sides must be accounted for."""
    unknown = sorted(set(weights) - set(table))
    missing = sorted(set(table) - set(weights))
    if unknown or missing:
        raise KeyError(
            f"{model}: canonical weights do not match the reference "
            f"(unexpected: {unknown[:5]}, missing: {missing[:5]})"
        )
    out = {}
    for key, ref_key in table.items():
        v = weights[key]
        out[ref_key] = (
            v.detach().clone()
            if isinstance(v, torch.Tensor)
            else torch.from_numpy(np.array(v, dtype=np.float32, copy=True))
        )
    return out


def _bn(table: dict[str, str], canonical: str, reference: str) -> None:
    for p in BN_KEYS:
        table[f"{canonical}.{p}"] = f"{reference}.{p}"


def _same(*names_and_params: tuple[str, tuple[str, ...]]) -> dict[str, str]:
    """Keys that are the same on both sides."""
    return {f"{n}.{p}": f"{n}.{p}" for n, params in names_and_params for p in params}


def _rnn_params(num_layers: int, bidirectional: bool) -> tuple[str, ...]:
    names = []
    for layer in range(num_layers):
        for suffix in ("", "_reverse") if bidirectional else ("",):
            names += [
                f"{w}_l{layer}{suffix}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            ]
    return tuple(names)


# -- LeNet-5 (specs/lenet5.yaml) ---------------------------------------------------------------


class LeNet5(nn.Module):
    """LeNet-5 on 1x32x32: conv 6@5x5, tanh, avg pool 2, conv 16@5x5, tanh, avg pool 2,
    120 - 84 - 10 with tanh."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5),  # 0
            nn.Tanh(),  # 1
            nn.AvgPool2d(2),  # 2
            nn.Conv2d(6, 16, kernel_size=5),  # 3
            nn.Tanh(),  # 4
            nn.AvgPool2d(2),  # 5
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120),  # 0
            nn.Tanh(),  # 1
            nn.Linear(120, 84),  # 2
            nn.Tanh(),  # 3
            nn.Linear(84, num_classes),  # 4
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.features(image)
        x = torch.flatten(x, 1)
        return self.classifier(x)

    @staticmethod
    def canonical_keys() -> dict[str, str]:
        return {
            "conv1.weight": "features.0.weight",
            "conv1.bias": "features.0.bias",
            "conv2.weight": "features.3.weight",
            "conv2.bias": "features.3.bias",
            "fc1.weight": "classifier.0.weight",
            "fc1.bias": "classifier.0.bias",
            "fc2.weight": "classifier.2.weight",
            "fc2.bias": "classifier.2.bias",
            "fc3.weight": "classifier.4.weight",
            "fc3.bias": "classifier.4.bias",
        }

    @classmethod
    def canonical_to_reference(cls, weights: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return _rename(weights, cls.canonical_keys(), "LeNet5")


# -- ResNet-18 (specs/resnet18.yaml), torchvision's structure ---------------------------------


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class ResNet18(nn.Module):
    """torchvision.models.resnet18 (BasicBlock, layers [2, 2, 2, 2]); 11,689,512 parameters."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 2)
        self.layer2 = self._make_layer(128, 2, stride=2)
        self.layer3 = self._make_layer(256, 2, stride=2)
        self.layer4 = self._make_layer(512, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * BasicBlock.expansion, num_classes)
        for m in self.modules():  # torchvision's initialization
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * BasicBlock.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * BasicBlock.expansion, stride),
                nn.BatchNorm2d(planes * BasicBlock.expansion),
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * BasicBlock.expansion
        for _ in range(1, blocks):
            layers.append(BasicBlock(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.conv1(image)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)

    @staticmethod
    def canonical_keys() -> dict[str, str]:
        """Spec block use `layer<s>_<b>` is torchvision's `layer<s>.<b - 1>`; the block
        `basic_down`'s `downsample_conv` / `downsample_bn` are `downsample.0` / `downsample.1`."""
        t: dict[str, str] = {"conv1.weight": "conv1.weight"}
        _bn(t, "bn1", "bn1")
        for stage in (1, 2, 3, 4):
            for block in (1, 2):
                c = f"layer{stage}_{block}"  # canonical (netspec) block use
                r = f"layer{stage}.{block - 1}"  # torchvision
                t[f"{c}.conv1.weight"] = f"{r}.conv1.weight"
                _bn(t, f"{c}.bn1", f"{r}.bn1")
                t[f"{c}.conv2.weight"] = f"{r}.conv2.weight"
                _bn(t, f"{c}.bn2", f"{r}.bn2")
                if stage > 1 and block == 1:
                    t[f"{c}.downsample_conv.weight"] = f"{r}.downsample.0.weight"
                    _bn(t, f"{c}.downsample_bn", f"{r}.downsample.1")
        t["fc.weight"] = "fc.weight"
        t["fc.bias"] = "fc.bias"
        return t

    @classmethod
    def canonical_to_reference(cls, weights: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return _rename(weights, cls.canonical_keys(), "ResNet18")


# -- Character-level LSTM (specs/char_lstm.yaml) ----------------------------------------------


class CharLSTM(nn.Module):
    """Embedding 65x32 -> 2-layer LSTM(128), every step -> Linear(128, 65), in the style of
    PyTorch's word_language_model example."""

    def __init__(
        self, vocab: int = 65, embed_dim: int = 32, hidden: int = 128, num_layers: int = 2
    ):
        super().__init__()
        self.encoder = nn.Embedding(vocab, embed_dim)
        self.rnn = nn.LSTM(embed_dim, hidden, num_layers=num_layers, batch_first=True)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        emb = self.encoder(tokens)  # [N, T, 32]
        output, _ = self.rnn(emb)  # [N, T, 128]
        return self.decoder(output)  # [N, T, 65]

    @staticmethod
    def canonical_keys() -> dict[str, str]:
        t = {"embed.weight": "encoder.weight"}
        for p in _rnn_params(num_layers=2, bidirectional=False):
            t[f"lstm.{p}"] = f"rnn.{p}"
        t["logits.weight"] = "decoder.weight"
        t["logits.bias"] = "decoder.bias"
        return t

    @classmethod
    def canonical_to_reference(cls, weights: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return _rename(weights, cls.canonical_keys(), "CharLSTM")


# -- Bidirectional GRU classifier (specs/bigru_classifier.yaml) -------------------------------


class BiGRUClassifier(nn.Module):
    """Bidirectional GRU(32) over [T, 16]; final states of both directions -> Linear -> softmax."""

    def __init__(self, features: int = 16, hidden: int = 32, classes: int = 5):
        super().__init__()
        self.gru = nn.GRU(features, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h_n = self.gru(x)  # h_n: [2, N, 32] (forward, backward)
        h = torch.cat([h_n[-2], h_n[-1]], dim=1)  # [N, 64], forward first
        return F.softmax(self.fc(h), dim=-1)

    @staticmethod
    def canonical_keys() -> dict[str, str]:
        return _same(
            ("gru", _rnn_params(num_layers=1, bidirectional=True)), ("fc", ("weight", "bias"))
        )

    @classmethod
    def canonical_to_reference(cls, weights: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return _rename(weights, cls.canonical_keys(), "BiGRUClassifier")


# -- DCGAN generator (specs/dcgan_generator.yaml), the PyTorch DCGAN tutorial's ---------------


class DCGANGenerator(nn.Module):
    """z [100] -> 3x64x64 in [-1, 1]; the tutorial's `Generator` with nz=100, ngf=64, nc=3."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3):
        super().__init__()
        self.nz = nz
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),  # 0: 512 x 4 x 4
            nn.BatchNorm2d(ngf * 8),  # 1
            nn.ReLU(True),  # 2
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),  # 3: 256 x 8 x 8
            nn.BatchNorm2d(ngf * 4),  # 4
            nn.ReLU(True),  # 5
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),  # 6: 128 x 16 x 16
            nn.BatchNorm2d(ngf * 2),  # 7
            nn.ReLU(True),  # 8
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),  # 9: 64 x 32 x 32
            nn.BatchNorm2d(ngf),  # 10
            nn.ReLU(True),  # 11
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),  # 12: 3 x 64 x 64
            nn.Tanh(),  # 13
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.reshape(z.shape[0], self.nz, 1, 1))

    @staticmethod
    def canonical_keys() -> dict[str, str]:
        t = {
            "convt1.weight": "main.0.weight",
            "convt2.weight": "main.3.weight",
            "convt3.weight": "main.6.weight",
            "convt4.weight": "main.9.weight",
            "convt5.weight": "main.12.weight",
        }
        _bn(t, "bn1", "main.1")
        _bn(t, "bn2", "main.4")
        _bn(t, "bn3", "main.7")
        _bn(t, "bn4", "main.10")
        return t

    @classmethod
    def canonical_to_reference(cls, weights: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return _rename(weights, cls.canonical_keys(), "DCGANGenerator")


# -- Registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A spec in `specs/` and the hand-written model it must match."""

    spec: str  # path relative to the repository root
    model: type[nn.Module]
    example_input: Callable[[], torch.Tensor]  # a small batch (N = 2), seeded
    output_shape: tuple[int, ...]  # with the batch axis
    params: int  # trainable parameters
    buffers: int  # batch_norm running statistics (not counted)

    def build(self) -> nn.Module:
        return self.model().eval()


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


REFERENCES: dict[str, Reference] = {
    "lenet5": Reference(
        "specs/lenet5.yaml",
        LeNet5,
        lambda: torch.randn(2, 1, 32, 32, generator=_gen()),
        (2, 10),
        61_706,
        0,
    ),
    "resnet18": Reference(
        "specs/resnet18.yaml",
        ResNet18,
        lambda: torch.randn(2, 3, 224, 224, generator=_gen()),
        (2, 1000),
        11_689_512,
        9_600,
    ),
    "char_lstm": Reference(
        "specs/char_lstm.yaml",
        CharLSTM,
        lambda: torch.randint(0, 65, (2, 7), generator=_gen()),
        (2, 7, 65),
        225_505,
        0,
    ),
    "bigru_classifier": Reference(
        "specs/bigru_classifier.yaml",
        BiGRUClassifier,
        lambda: torch.randn(2, 9, 16, generator=_gen()),
        (2, 5),
        9_925,
        0,
    ),
    "dcgan_generator": Reference(
        "specs/dcgan_generator.yaml",
        DCGANGenerator,
        lambda: torch.randn(2, 100, generator=_gen()),
        (2, 3, 64, 64),
        3_576_704,
        1_920,
    ),
}


def canonical_to_reference(
    spec_name: str, weights: Mapping[str, np.ndarray]
) -> dict[str, torch.Tensor]:
    """Canonical weights of `specs/<spec_name>.yaml` -> that reference model's state_dict."""
    return REFERENCES[spec_name].model.canonical_to_reference(weights)


def reference_to_canonical(
    spec_name: str, state_dict: Mapping[str, torch.Tensor]
) -> dict[str, np.ndarray]:
    """The inverse: a reference model's state_dict -> canonical numpy arrays
    (`num_batches_tracked` dropped)."""
    table = REFERENCES[spec_name].model.canonical_keys()
    return {c: state_dict[r].detach().cpu().numpy().copy() for c, r in table.items()}


def load_canonical(model: nn.Module, weights: Mapping[str, np.ndarray]) -> nn.Module:
    """Load canonical weights into a reference model (any module with a `canonical_keys()`
    table, the benchmarks' twins too), strictly; returns it in eval mode.

    batch_norm's `num_batches_tracked` is not a canonical key: it is kept as the model has it.
    """
    state = _rename(weights, model.canonical_keys(), type(model).__name__)
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            state[k] = v
    model.load_state_dict(state, strict=True)
    return model.eval()


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def buffer_count(model: nn.Module) -> int:
    return sum(b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked"))
