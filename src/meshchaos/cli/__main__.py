"""``python -m meshchaos.cli``: the same as the ``meshchaos`` command."""

import sys

from meshchaos.cli import main

sys.exit(main())
