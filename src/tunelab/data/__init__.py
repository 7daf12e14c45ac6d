"""Data for fine-tuning: read files into row-numbered frames, find labels, split.

Everything a user can get wrong in a data file raises `tunelab.errors.DataError` naming
the file, row and column.
"""

from tunelab.data.labels import LabelSpace, discover_labels, encode_labels, label_counts
from tunelab.data.readers import SUPPORTED, read_table, require_columns, text_column
from tunelab.data.splits import stratified_split

__all__ = [
    "SUPPORTED",
    "LabelSpace",
    "discover_labels",
    "encode_labels",
    "label_counts",
    "read_table",
    "require_columns",
    "stratified_split",
    "text_column",
]
