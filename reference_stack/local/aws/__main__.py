"""``python -m reference_stack.local.aws --config FILE``: run the aws service process."""

import sys

from reference_stack.local.aws.server import main

sys.exit(main())
