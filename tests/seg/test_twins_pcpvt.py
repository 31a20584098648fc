"""PCPVT's global sub-sampled attention: without sub-sampling it is plain global attention."""

import torch
import torch.nn.functional as F

from lkca.seg.twins_pcpvt import GlobalSubsampledAttention


def test_gsa_without_subsampling_is_global_attention_and_subsampled_runs():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 8)
    gsa = GlobalSubsampledAttention(8, 2, sr=1)
    q = gsa.q(x).reshape(2, 16, 2, 4).transpose(1, 2)
    k, v = gsa.kv(x).reshape(2, 16, 2, 2, 4).permute(2, 0, 3, 1, 4)
    expected = gsa.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 16, 8))
    torch.testing.assert_close(gsa(x, (4, 4)), expected)
    assert GlobalSubsampledAttention(8, 2, sr=2)(torch.randn(1, 36, 8), (6, 6)).shape == (1, 36, 8)
