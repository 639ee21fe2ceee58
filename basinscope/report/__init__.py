"""Reports: a self-contained HTML page (:class:`Report`) and a JSON file of every number (:func:`write_json`)."""

from .html import Report, format_number, referenced_paths
from .json import dumps, jsonable, write_json

__all__ = ["Report", "dumps", "format_number", "jsonable", "referenced_paths", "write_json"]
