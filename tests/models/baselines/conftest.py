"""Shared helpers of the comparison-model tests."""

import pytest
import torch

import lkca


def count_params(name, **overrides):
    """Parameters of the registered model ``name`` built with config ``overrides``."""
    return sum(p.numel() for p in lkca.create_model(name, **overrides).parameters())


@pytest.fixture
def param_count():
    """:func:`count_params`, for tests that compare a size with other settings."""
    return count_params


def check_row(name, img, classes, params):
    """The registered ``name`` at ``img`` px with ``classes`` has the ``params`` derived from the
    authors' shape, and its forward gives one logit per class."""
    model = lkca.create_model(name, img_size=img, num_classes=classes).eval()
    assert sum(p.numel() for p in model.parameters()) == params
    assert model(torch.randn(1, 3, img, img)).shape == (1, classes)


@pytest.fixture
def authors_row():
    """:func:`check_row`, for the per-family row tests."""
    return check_row
