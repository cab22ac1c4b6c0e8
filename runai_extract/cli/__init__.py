"""The ``runai-ledger`` command line: commands, what they print, progress, the demo.

The top of the tree: may import anything below it (and the fake, for fake-server and the demo);
nothing imports cli/ but the console entry point and the demo driver in dags/.
"""

from runai_extract.cli.main import main

__all__ = ["main"]
