"""The errors that loading raises: both are ``ValueError`` s, so ``except ValueError`` catches them."""


class FileFormatError(ValueError):
    """A file is not a valid lamina file: truncated, corrupted, oversized or malformed."""


class WeightMismatchError(ValueError):
    """A file's tensors do not fit the model: missing or unexpected keys, wrong shapes or dtypes.

    Raised before any variable is changed; ``problems`` lists every mismatch found.
    """

    def __init__(self, message: str, problems: list[str]):
        super().__init__(message)
        self.problems = problems
