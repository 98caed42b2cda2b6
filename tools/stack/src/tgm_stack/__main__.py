"""`python -m tgm_stack up ...` is the same as `tgm-stack up ...`."""

import sys

from .cli import main

sys.exit(main())
