"""Checkpoints of the paper's authors' code (CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-
TinyImageNet), converted to our models: ``loader`` (``lkca.from_authors_checkpoint``) dispatches
on the registered name to the family's module (``vit``, ``swin``, ``cait`` ...), each holding its
converter in ``LAYOUTS``; ``substitute`` and ``rename`` are the two ways the families' converters
map keys (docs/pretrained-and-export.md)."""
