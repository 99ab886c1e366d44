import sys

from mrisr.cli import main

sys.exit(main())
