"""``lkca reproduce``: every run of a paper table (or a table of your own), planned from the
configs, launched on the GPUs of a node or on a Slurm cluster, resumable, with seeds, and the
table rendered beside the paper's (docs/reproduce.md)."""
