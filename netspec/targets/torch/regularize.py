"""Helper modules of the regularization ops that PyTorch has no module for (torchvision's
StochasticDepth and DropBlock2d are not installable beside the pinned PyTorch): their source,
copied into a generated module that uses them. The identity at inference (`eval()`)."""

DROP_PATH = '''
class DropPath(nn.Module):
    """Stochastic depth: in training, each example is zeroed with probability `rate` and the
    rest scaled by 1 / (1 - rate); the identity at inference."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask / keep
'''

DROP_BLOCK = '''
class DropBlock(nn.Module):
    """DropBlock (Ghiasi et al. 2018) on [N, C, H, W]: in training, block_size squares inside
    each channel are zeroed, seeded with the probability that drops about `rate` of the values,
    and the rest scaled by the inverse of the kept fraction; the identity at inference."""

    def __init__(self, rate: float, block_size: int):
        super().__init__()
        self.rate = rate
        self.block_size = block_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        n, c, h, w = x.shape
        k = self.block_size
        gamma = self.rate * h * w / (k * k * (h - k + 1) * (w - k + 1))
        seeds = torch.full((n, c, h - k + 1, w - k + 1), gamma, dtype=x.dtype, device=x.device)
        mask = F.max_pool2d(F.pad(torch.bernoulli(seeds), (k - 1,) * 4), k, stride=1)
        keep = 1.0 - mask
        return x * keep * (keep.numel() / keep.sum().clamp_min(1.0))
'''

HELPERS = {"DropPath": DROP_PATH, "DropBlock": DROP_BLOCK}
