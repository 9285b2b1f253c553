import sys

from deepzoo.cli import main

sys.exit(main())
