"""Paper reproductions: one script per study; shared machinery in :mod:`studies.harness`."""
