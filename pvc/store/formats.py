"""Format numbers of what pvc writes, in a module that imports nothing (the stat-only paths read them early)."""

STORE_FORMAT = 1  # .pvc/config "format" that `pvc init` writes
DICT_STORE_FORMAT = 2  # a store holding zstd dictionaries (DICT / ZSTD_DICT records): an older pvc must refuse it
READ_STORE_FORMATS = (1, 2)
MANIFEST_FORMAT = 1  # the manifest's "format" (pvc/store/model.py)
