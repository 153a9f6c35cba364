"""``python -m reference_stack.local.search --config FILE``: run the search service."""

from reference_stack.local.search.server import main

raise SystemExit(main())
