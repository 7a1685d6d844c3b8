"""The `berth` command line. Nothing imports this package."""
