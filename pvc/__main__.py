import sys

from pvc.entry import main

sys.exit(main())
