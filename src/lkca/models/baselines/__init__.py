"""Comparison models of the paper's Tables 4-5, registered beside ViT / ViT-LKCA.

One module per family; importing it registers every size (names: ``<family>_<size>_<input>``,
docs/baselines.md). One import line per module, in alphabetical order (ruff's isort).
"""

import lkca.models.baselines.cait  # noqa: F401
import lkca.models.baselines.crossvit  # noqa: F401
import lkca.models.baselines.cvt  # noqa: F401
import lkca.models.baselines.deepvit  # noqa: F401
import lkca.models.baselines.mobilevitv2  # noqa: F401
import lkca.models.baselines.regionvit  # noqa: F401
import lkca.models.baselines.rvt  # noqa: F401
import lkca.models.baselines.swin  # noqa: F401
import lkca.models.baselines.t2t  # noqa: F401
import lkca.models.baselines.twins  # noqa: F401
import lkca.models.baselines.xcit  # noqa: F401
