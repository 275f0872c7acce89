"""Cases: the service that opens them and moves them, and what it keeps.

service.py    :class:`CaseService` — create a case, submit an event (one transaction:
              the case row, its history row, timers and outbox), read with a viewer
records.py    the records it returns (:class:`CaseView`, :class:`Change`, filters)
rows.py       the only writes to the ``cases`` row from outside the service
              (a deadline, an escalation level), in the caller's transaction
history.py    the hash-chained history and its verification
catalog.py    the workflow versions registered, compiled once per version
ids.py        short per-day ids that never collide (``C20261201-0042``)
export.py     the case ledger as CSV / XLSX
"""
