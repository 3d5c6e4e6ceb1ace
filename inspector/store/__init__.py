"""The session store: every flow recorded to one SQLite file as it happens.

Three jobs, one module each (plus what they share):

- record.py: a Flow as stored (the JSON record, the indexed column values, the bodies),
  and ``FlowSummary``, a flow-list row read from columns only;
- schema.py and migrations.py: the file's layout, and bringing older files to it;
  search.py: the full-text index;
- writer.py: the writer thread (group commit, operations as a table of handlers);
  files.py and reads.py: opening the file and reading it back; store.py: ``Store``.
"""

from inspector.store.errors import StoreError
from inspector.store.record import FlowSummary, flow_from_record, flow_to_record
from inspector.store.schema import SCHEMA_VERSION, SORT_KEYS
from inspector.store.store import Store
from inspector.store.writer import COMMIT_DELAY

__all__ = [
    "COMMIT_DELAY",
    "SCHEMA_VERSION",
    "SORT_KEYS",
    "FlowSummary",
    "Store",
    "StoreError",
    "flow_from_record",
    "flow_to_record",
]
