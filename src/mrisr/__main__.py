"""``python -m mrisr``: the command line, without the current folder on the import path. ``python -m`` puts that
folder first, so a file there named like a plugin's module would be imported in its place."""

import os
import sys

from mrisr.cli import main

if not sys.flags.safe_path and sys.path and os.path.abspath(sys.path[0] or os.curdir) == os.getcwd():
    del sys.path[0]
sys.exit(main())
