"""What the uses of snapshots cost (``python -m bench.uses``, written to ``bench/USES.md``):
one module per use, the command line and the report in ``__main__.py``."""
