"""`PeopleDatabase`: the connection to `people.sqlite3` that its two table owners share in
shape (`gateway.people.directory`, `gateway.people.links`): an `OwnedDatabase` of the
`PEOPLE` schema."""

from __future__ import annotations

from gateway.storage.owned import OwnedDatabase
from gateway.storage.schemas import PEOPLE


class PeopleDatabase(OwnedDatabase):
    SCHEMA = PEOPLE
