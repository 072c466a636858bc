"""The refusal of a data file that cannot be read as a table (stdlib only: the CLI imports it at start)."""


class DataFileError(ValueError):
    """A data file that cannot be trained on as a table: not UTF-8 text, not a CSV, or empty."""
