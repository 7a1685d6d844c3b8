"""Online garbage collection: mark and sweep over SQL references while the registry serves."""

from registry.gc.collect import DEFAULT_GRACE, GC_LEASE, GCOptions, collect_garbage
from registry.gc.report import GCReport, Removal

__all__ = ["DEFAULT_GRACE", "GCOptions", "GCReport", "GC_LEASE", "Removal", "collect_garbage"]
