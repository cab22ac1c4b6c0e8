"""``python -m runai_extract.cli``: the same entry point as the ``runai-ledger`` script."""

from runai_extract.cli.main import main

main()
