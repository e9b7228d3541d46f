"""``python -m tether``: the package's command line (``audit``; see tether.audit)."""

import sys

from tether.audit import main

if __name__ == "__main__":
    sys.exit(main())
