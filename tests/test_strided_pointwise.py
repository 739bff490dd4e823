"""The residual blocks' strided 1x1 projection: the same result as a strided ``nn.Conv2d``, and a
bf16 channels-last backward on two threads that does not corrupt the heap."""

import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from napari_nucleiseg.models.blocks import ResBlock, StridedPointwise


@pytest.mark.parametrize("shape", [(32, 32), (33, 17), (1, 1)])
def test_subsampling_first_gives_the_strided_convolution(shape):
    torch.manual_seed(0)
    ref = nn.Conv2d(8, 16, 1, stride=2, bias=False)
    ours = StridedPointwise(8, 16, 2)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 8, *shape)
    assert torch.allclose(ours(x), ref(x), rtol=1e-6, atol=1e-6)


def test_shipped_state_dict_keys_are_unchanged():
    block = ResBlock(8, 16, stride=2)
    assert isinstance(block.skip[0], StridedPointwise)
    assert sorted(k for k in block.state_dict() if k.startswith("skip.")) == [
        "skip.0.weight", "skip.1.bias", "skip.1.num_batches_tracked", "skip.1.running_mean",
        "skip.1.running_var", "skip.1.weight"]


def test_bf16_channels_last_backward_on_two_threads_survives():
    # torch 2.13's oneDNN kernel for this layer aborted the process ("double free or corruption")
    code = textwrap.dedent("""
        import torch
        from napari_nucleiseg.models.blocks import ResBlock
        torch.set_num_threads(2)
        for cin, size in ((8, 32), (8, 64), (4, 16)):
            block = ResBlock(cin, 2 * cin, stride=2).to(memory_format=torch.channels_last)
            for _ in range(20):
                x = torch.randn(1, cin, size, size).contiguous(memory_format=torch.channels_last)
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    y = block(x.requires_grad_(True))
                y.float().sum().backward()
        print("survived")
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "survived" in run.stdout, run.stderr[-500:]
