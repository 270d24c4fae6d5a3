"""`python -m telephony_bridge.local_engine --port 8765 --script FILE`"""

import sys

from .server import main

sys.exit(main())
