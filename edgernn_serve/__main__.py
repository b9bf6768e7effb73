import sys

from edgernn_serve.cli import main

sys.exit(main())
