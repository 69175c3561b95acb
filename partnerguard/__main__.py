"""`python -m partnerguard`: see partnerguard.cli."""

from partnerguard.cli import main

raise SystemExit(main())
