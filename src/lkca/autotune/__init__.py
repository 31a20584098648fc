"""How ``LKCA(impl="auto")`` chooses its implementation (docs/benchmarks.md, "How auto chooses"):
the tuner (:mod:`~lkca.autotune.tuner`, whose ``choose`` the layer calls), the timing race
(:mod:`~lkca.autotune.timing`), the record of a choice (:mod:`~lkca.autotune.record`), the cache
on disk (:mod:`~lkca.autotune.cache`) and the ``lkca autotune`` command. It knows no layer: the
layer passes its implementations in."""
