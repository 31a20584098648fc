"""Classification training (paper section 4.1): the config (:mod:`~lkca.train.config`), the
optimiser and schedule (:mod:`~lkca.train.optim`), the loop (:mod:`~lkca.train.engine`) and the
``lkca train`` / ``lkca eval`` commands (:mod:`~lkca.train.commands`)."""
