"""``python -m deconv3d``: the command line of :mod:`deconv3d.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
