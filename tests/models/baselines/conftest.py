"""Shared helpers of the comparison-model tests."""

import pytest

import lkca


def count_params(name, **overrides):
    """Parameters of the registered model ``name`` built with config ``overrides``."""
    return sum(p.numel() for p in lkca.create_model(name, **overrides).parameters())


@pytest.fixture
def param_count():
    """:func:`count_params`, for tests that compare a size with other settings."""
    return count_params
