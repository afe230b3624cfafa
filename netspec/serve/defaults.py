"""The defaults of `netspec serve` (a module of its own, so that the command line reads them
without importing the server's dependencies)."""

DEFAULT_MAX_BODY = 64 * 1024 * 1024  # bytes of one request body
DEFAULT_MAX_BATCH = 64  # rows of one request; rows of one dynamic batch
DEFAULT_BATCH_DELAY_MS = 2.0  # how long a dynamic batch waits for more after its first request
