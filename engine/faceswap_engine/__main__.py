"""``python -m faceswap_engine`` = ``faceswap-engine``."""

import sys

from .cli import main

sys.exit(main())
