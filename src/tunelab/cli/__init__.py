"""The `tunelab` command: thin, parses arguments and calls `tunelab.api`.

commands.py holds the parser and the commands; data.py, explain.py, export.py and serve.py the
sub-commands that grew their own options. The entry point stays `tunelab.cli:main`.
"""

from tunelab.cli.commands import main

__all__ = ["main"]
