"""``python -m payloadhook.cli``: the command without its installed script."""
import sys

from . import main

sys.exit(main())
