import sys

from pvc.cli import main

sys.exit(main())
