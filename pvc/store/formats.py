"""Format numbers of what pvc writes, in a module that imports nothing (the stat-only paths read them early)."""

STORE_FORMAT = 1  # .pvc/config "format"
MANIFEST_FORMAT = 1  # the manifest's "format" (pvc/store/model.py)
